package adapt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needTools skips the test when ffmpeg or ffprobe is missing, or fails it
// when MMSRELAY_REQUIRE_TOOLS=1 (as CI sets it).
func needTools(t *testing.T) {
	t.Helper()
	for _, p := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("MMSRELAY_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s not found and MMSRELAY_REQUIRE_TOOLS=1: apt-get install ffmpeg", p)
			}
			t.Skipf("%s not found: apt-get install ffmpeg to run this test (MMSRELAY_REQUIRE_TOOLS=1 makes it fail)", p)
		}
	}
}

// gen makes test media with ffmpeg's own sources; args go between the
// common options and the output file, whose format is ext.
func gen(t *testing.T, ext string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "gen."+ext)
	a := append([]string{"-nostdin", "-hide_banner", "-loglevel", "error"}, args...)
	if b, err := exec.Command("ffmpeg", append(a, "-y", out)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sine(t *testing.T, secs int) []byte {
	t.Helper()
	return gen(t, "wav", "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=44100:duration=%d", secs))
}

func testVideo(t *testing.T, secs int, audio bool) []byte {
	t.Helper()
	a := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=320x240:rate=25:duration=%d", secs)}
	if audio {
		a = append(a, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=300:duration=%d", secs), "-c:a", "aac")
	}
	return gen(t, "mp4", append(a, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")...)
}

type probed struct {
	format   string
	duration float64
	streams  []probedStream
}

type probedStream struct {
	typ, codec    string
	width, height int
	sampleRate    int
	channels      int
}

// probeData checks that data decodes whole without an error and returns
// what ffprobe says of it.
func probeData(t *testing.T, data []byte) probed {
	t.Helper()
	f := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", f, "-f", "null", "-").CombinedOutput(); err != nil || len(b) > 0 {
		t.Fatalf("decoding the output: %v\n%s", err, b)
	}
	b, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_entries",
		"format=format_name,duration:stream=codec_type,codec_name,width,height,sample_rate,channels,nb_read_packets", "-of", "json", f).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var j struct {
		Format  struct{ Format_name, Duration string }
		Streams []struct {
			Codec_type, Codec_name, Sample_rate string
			Width, Height, Channels             int
			Nb_read_packets                     string
		}
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	p := probed{format: j.Format.Format_name}
	p.duration, _ = strconv.ParseFloat(j.Format.Duration, 64)
	for _, s := range j.Streams {
		sr, _ := strconv.Atoi(s.Sample_rate)
		p.streams = append(p.streams, probedStream{s.Codec_type, s.Codec_name, s.Width, s.Height, sr, s.Channels})
		if n, _ := strconv.Atoi(s.Nb_read_packets); s.Codec_name == "amr_nb" && p.format == "amr" {
			// ffprobe guesses a raw AMR file's duration from a bitrate
			// that leaves out the frame headers: count the 20 ms frames.
			p.duration = float64(n) * 0.020
		}
	}
	return p
}

func (p probed) stream(typ string) (probedStream, bool) {
	for _, s := range p.streams {
		if s.typ == typ {
			return s, true
		}
	}
	return probedStream{}, false
}

func hasAMR(t *testing.T) bool {
	t.Helper()
	enc, err := new(Transcoder).listEncoders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return enc["libopencore_amrnb"]
}

// checkAudio checks an audio clip: type, size, decoding, codec and duration.
func checkAudio(t *testing.T, c *Clip, budget int, wantSecs float64, amr bool) {
	t.Helper()
	if len(c.Data) > budget {
		t.Errorf("size %d, over the budget of %d", len(c.Data), budget)
	}
	wantType, wantCodec := TypeAudio3GPP, "aac"
	if amr {
		wantType, wantCodec = TypeAMR, "amr_nb"
	}
	if c.ContentType != wantType {
		t.Errorf("ContentType = %q, want %q", c.ContentType, wantType)
	}
	p := probeData(t, c.Data)
	s, ok := p.stream("audio")
	if !ok || s.codec != wantCodec || s.channels != 1 || (amr && s.sampleRate != 8000) {
		t.Errorf("streams = %+v, want mono %s", p.streams, wantCodec)
	}
	if _, ok := p.stream("video"); ok {
		t.Errorf("audio clip has a video stream: %+v", p.streams)
	}
	if math.Abs(p.duration-wantSecs) > 0.3 {
		t.Errorf("duration = %.2fs, want %.1fs", p.duration, wantSecs)
	}
	if math.Abs(c.Duration.Seconds()-p.duration) > 0.1 {
		t.Errorf("Clip.Duration = %v, ffprobe says %.2fs", c.Duration, p.duration)
	}
}

func TestTranscodeAudio(t *testing.T) {
	needTools(t)
	t.Parallel()
	ctx := context.Background()
	in := sine(t, 20) // 1.7 MB of WAV
	tc := &Transcoder{}
	c, err := tc.Audio(ctx, in, 40*1024)
	if err != nil {
		t.Fatalf("Audio(20 s, 40 KiB) = %v", err)
	}
	amr := hasAMR(t)
	checkAudio(t, c, 40*1024, 20, amr)
	if !amr {
		msg := "this ffmpeg has no libopencore_amrnb encoder, so AMR output is not tested (Debian: apt-get install libavcodec-extra)"
		if os.Getenv("MMSRELAY_REQUIRE_TOOLS") == "1" {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
	if c.Cut || c.Original.Round(time.Second) != 20*time.Second {
		t.Errorf("Cut = %v, Original = %v, want false, 20s", c.Cut, c.Original)
	}

	// The same where ffmpeg has no AMR encoder: AAC in 3GPP.
	aac := &Transcoder{encoders: map[string]bool{"aac": true}}
	c, err = aac.Audio(ctx, in, 40*1024)
	if err != nil {
		t.Fatalf("Audio(20 s, 40 KiB) without AMR = %v", err)
	}
	checkAudio(t, c, 40*1024, 20, false)
}

func TestTranscodeAudioCut(t *testing.T) {
	needTools(t)
	t.Parallel()
	in := sine(t, 60)
	budget := 8 * 1024 // 1 KB/s at 8 kbit/s AAC, 0.65 KB/s at 4.75 kbit/s AMR
	for _, tc := range []*Transcoder{{}, {encoders: map[string]bool{"aac": true}}} {
		c, err := tc.Audio(context.Background(), in, budget)
		if err != nil {
			t.Fatalf("Audio(60 s, 8 KiB) = %v", err)
		}
		if !c.Cut || c.Duration < 4*time.Second || c.Duration > 15*time.Second {
			t.Errorf("Cut = %v, Duration = %v, want a cut to 4–15 s", c.Cut, c.Duration)
		}
		checkAudio(t, c, budget, c.Duration.Seconds(), c.ContentType == TypeAMR)
	}
}

func checkVideo(t *testing.T, c *Clip, budget, maxW, maxH int, wantSecs float64, audio bool) probed {
	t.Helper()
	if len(c.Data) > budget {
		t.Errorf("size %d, over the budget of %d", len(c.Data), budget)
	}
	if c.ContentType != TypeVideo3GPP {
		t.Errorf("ContentType = %q, want %q", c.ContentType, TypeVideo3GPP)
	}
	p := probeData(t, c.Data)
	if !strings.Contains(p.format, "3gp") {
		t.Errorf("format = %q, want 3gp", p.format)
	}
	v, ok := p.stream("video")
	if !ok || (v.codec != "h264" && v.codec != "h263") || v.width > maxW || v.height > maxH || v.width == 0 {
		t.Errorf("video stream = %+v, want H.264 or H.263 within %d×%d", v, maxW, maxH)
	}
	if a, ok := p.stream("audio"); ok != audio || (ok && a.codec != "aac" && a.codec != "amr_nb") {
		t.Errorf("audio stream = %+v (%v), want %v", a, ok, audio)
	}
	if math.Abs(p.duration-wantSecs) > 0.5 {
		t.Errorf("duration = %.2fs, want %.1fs", p.duration, wantSecs)
	}
	return p
}

func TestTranscodeVideo(t *testing.T) {
	needTools(t)
	t.Parallel()
	ctx := context.Background()
	in := testVideo(t, 6, true)
	tc := &Transcoder{}
	c, err := tc.Video(ctx, in, 100*1024)
	if err != nil {
		t.Fatalf("Video(6 s, 100 KiB) = %v", err)
	}
	p := checkVideo(t, c, 100*1024, 176, 144, 6, true)
	if v, _ := p.stream("video"); v.width != 176 || v.height != 132 {
		t.Errorf("4:3 input scaled to %d×%d, want 176×132", v.width, v.height)
	}
	if c.Cut {
		t.Error("Cut = true, want false")
	}

	// A larger budget: CIF.
	c, err = tc.Video(ctx, in, 400*1024)
	if err != nil {
		t.Fatalf("Video(6 s, 400 KiB) = %v", err)
	}
	p = checkVideo(t, c, 400*1024, 352, 288, 6, true)
	if v, _ := p.stream("video"); v.width <= 176 {
		t.Errorf("width = %d with 400 KiB for 6 s, want CIF", v.width)
	}
}

func TestTranscodeVideoH263(t *testing.T) {
	needTools(t)
	t.Parallel()
	// An ffmpeg build without libx264 or the AMR encoder.
	tc := &Transcoder{encoders: map[string]bool{"h263": true, "aac": true}}
	in := testVideo(t, 4, false)
	budget := 120 * 1024
	c, err := tc.Video(context.Background(), in, budget)
	if err != nil {
		t.Fatalf("Video(4 s, H.263) = %v", err)
	}
	// H.263 at its coarsest cannot hold testsrc at 20 kbit/s: it may be cut.
	p := checkVideo(t, c, budget, 176, 144, c.Duration.Seconds(), false)
	if v, _ := p.stream("video"); v.codec != "h263" || v.width != 176 || v.height != 144 {
		t.Errorf("video stream = %+v, want H.263 176×144", v)
	}
}

func TestTranscodeVideoCut(t *testing.T) {
	needTools(t)
	t.Parallel()
	in := testVideo(t, 12, true)
	budget := 24 * 1024
	c, err := new(Transcoder).Video(context.Background(), in, budget)
	if err != nil {
		t.Fatalf("Video(12 s, 24 KiB) = %v", err)
	}
	if !c.Cut || c.Duration < time.Second || c.Duration > 10*time.Second {
		t.Errorf("Cut = %v, Duration = %v, want a cut", c.Cut, c.Duration)
	}
	checkVideo(t, c, budget, 176, 144, c.Duration.Seconds(), true)
}

func TestTranscodeErrors(t *testing.T) {
	needTools(t)
	t.Parallel()
	ctx := context.Background()
	wav := sine(t, 3)
	playlist := []byte("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
	for _, tt := range []struct {
		name   string
		tc     *Transcoder
		data   []byte
		budget int
		want   error
	}{
		{"garbage", &Transcoder{}, []byte("this is not audio at all"), 10000, ErrUndecodable},
		{"playlist", &Transcoder{}, playlist, 10000, ErrUndecodable},
		{"too large", &Transcoder{MaxInputBytes: 1000}, wav, 10000, ErrInputTooLarge},
		{"no ffmpeg", &Transcoder{FFmpeg: "/nonexistent/ffmpeg"}, wav, 10000, ErrNoTool},
		{"no ffprobe", &Transcoder{FFprobe: "/nonexistent/ffprobe"}, wav, 10000, ErrNoTool},
		{"tiny budget", &Transcoder{}, wav, 300, ErrDoesNotFit},
		{"timeout", &Transcoder{Timeout: time.Nanosecond}, wav, 10000, ErrTimeout},
	} {
		c, err := tt.tc.Audio(ctx, tt.data, tt.budget)
		var te *TranscodeError
		if !errors.Is(err, tt.want) || !errors.As(err, &te) {
			t.Errorf("%s: Audio() = %v, %v, want a *TranscodeError for %v", tt.name, c, err, tt.want)
		}
	}
	if _, err := new(Transcoder).Video(ctx, wav, 100000); err != nil {
		t.Errorf("Video(audio only) = %v, want an audio clip", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := new(Transcoder).Audio(cctx, wav, 10000); !errors.Is(err, context.Canceled) {
		t.Errorf("Audio(canceled ctx) = %v, want context.Canceled", err)
	}
}

func TestFitTranscodes(t *testing.T) {
	needTools(t)
	t.Parallel()
	ctx := context.Background()
	var jpg bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 800, 600))
	for y := range 600 {
		for x := range 800 {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	if err := jpeg.Encode(&jpg, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	items := []Item{
		{Name: "photo.jpg", ContentType: "image/jpeg", Data: jpg.Bytes()},
		{Name: "memo.wav", ContentType: "audio/wav", Data: sine(t, 30)},
		{Name: "clip.mp4", ContentType: "video/mp4", Data: testVideo(t, 5, true)},
		{Name: "ring.m4a", ContentType: "audio/mp4", Data: gen(t, "m4a", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", "-b:a", "16k")},
	}
	p, _ := LookupProfile("basic")
	p.AllowedTypes = []string{"text/plain", "image/jpeg", "audio/mp4", "video/mp4"}
	budget := 200 * 1024

	// Without a transcoder: WAV unsupported, the MP4 too large.
	res, err := Fit(ctx, items, budget, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dropped) != 1 || res.Dropped[0].Name != "memo.wav" || res.Dropped[0].Reason != ReasonUnsupported {
		t.Errorf("without a transcoder: dropped %+v, want memo.wav unsupported", res.Dropped)
	}

	p.Transcoder = &Transcoder{}
	items[2].Data = testVideo(t, 12, true) // too large to pass through
	res, err = Fit(ctx, items, budget, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dropped) != 0 || len(res.Items) != 4 {
		t.Fatalf("Fit with a transcoder: items %d, dropped %+v, want 4 items", len(res.Items), res.Dropped)
	}
	if res.Size() > budget {
		t.Errorf("Size() = %d, over %d", res.Size(), budget)
	}
	got := res.Items
	wantAudio := TypeAudio3GPP
	if hasAMR(t) {
		wantAudio = TypeAMR
	}
	if got[0].ContentType != "image/jpeg" || len(got[0].Data) < 20*1024 {
		t.Errorf("image = %s, %d bytes: want a JPEG of a fair share", got[0].ContentType, len(got[0].Data))
	}
	if got[1].ContentType != wantAudio || !strings.HasPrefix(got[1].Name, "memo.") || got[1].Name == "memo.wav" {
		t.Errorf("audio = %s %s, want %s renamed", got[1].Name, got[1].ContentType, wantAudio)
	}
	if got[2].ContentType != TypeVideo3GPP || got[2].Name != "clip.3gp" {
		t.Errorf("video = %s %s, want clip.3gp %s", got[2].Name, got[2].ContentType, TypeVideo3GPP)
	}
	if got[3].Name != "ring.m4a" || !bytes.Equal(got[3].Data, items[3].Data) {
		t.Errorf("allowed small item = %s, changed; want it passed through", got[3].Name)
	}
	for _, it := range got[1:3] {
		probeData(t, it.Data)
	}
	t.Logf("sizes: image %d, audio %d, video %d; notes %q", len(got[0].Data), len(got[1].Data), len(got[2].Data), res.Notes)

	// A small budget: the video is cut, and a note says so; or dropped as
	// too large when not even a second fits.
	res, err = Fit(ctx, items[2:3], 16*1024, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "clip.mp4 was cut to its first") {
		t.Errorf("Fit(12 s video, 16 KiB) = %+v items, notes %q, dropped %+v; want a cut with a note", len(res.Items), res.Notes, res.Dropped)
	}
	res, err = Fit(ctx, items[2:3], 2*1024, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dropped) != 1 || res.Dropped[0].Reason != ReasonTooLarge || !errors.Is(res.Dropped[0].Err, ErrDoesNotFit) {
		t.Errorf("Fit(12 s video, 2 KiB): dropped %+v, want too large", res.Dropped)
	}
}

func TestParseEncoders(t *testing.T) {
	const out = `Encoders:
 V..... = Video
 A..... = Audio
 ------
 V..... h263                 H.263 / H.263-1996
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 A..... aac                  AAC (Advanced Audio Coding)
 A..... libopencore_amrnb    OpenCORE AMR-NB (Adaptive Multi-Rate Narrow-Band) (codec amr_nb)
`
	got := parseEncoders(out)
	for _, name := range []string{"h263", "libx264", "aac", "libopencore_amrnb"} {
		if !got[name] {
			t.Errorf("parseEncoders: %s missing from %v", name, got)
		}
	}
	if got["="] || got["Video"] || len(got) != 4 {
		t.Errorf("parseEncoders = %v, want the 4 encoders only", got)
	}
}

// TestPlanAMR checks the AMR plan against the exact size of the storage
// format, which needs no ffmpeg.
func TestPlanAMR(t *testing.T) {
	for _, tt := range []struct {
		secs     float64
		budget   int
		wantRate int
		wantCut  bool
	}{
		{10, 100_000, 12200, false}, // 32 B × 500 frames = 16 KB
		{10, 14_000, 10200, false},  // 27 × 500 = 13.5 KB
		{10, 7_000, 4750, false},    // 13 × 500 = 6.5 KB
		{60, 7_000, 4750, true},     // ~10 s of the 60
	} {
		p := &plan{kind: "audio", amr: true, full: time.Duration(tt.secs * float64(time.Second))}
		if !p.solve(tt.budget, 1) {
			t.Fatalf("solve(%vs, %d) = false", tt.secs, tt.budget)
		}
		size := amrHeader + int(math.Ceil(p.dur.Seconds()/amrFrame.Seconds()))*amrFrameBytes(p.aRate)
		if p.aRate != tt.wantRate || (p.dur < p.full) != tt.wantCut || size > tt.budget {
			t.Errorf("solve(%vs, %d) = %d bit/s for %v (%d bytes), want %d bit/s, cut %v",
				tt.secs, tt.budget, p.aRate, p.dur, size, tt.wantRate, tt.wantCut)
		}
	}
}

func amrFrameBytes(rate int) int {
	for _, m := range amrModes {
		if m.rate == rate {
			return m.frame
		}
	}
	return 0
}

func TestCutNote(t *testing.T) {
	if got, want := CutNote("talk.mp4", 90*time.Second+400*time.Millisecond), "[talk.mp4 was cut to its first 1:30 to fit]"; got != want {
		t.Errorf("CutNote = %q, want %q", got, want)
	}
}
