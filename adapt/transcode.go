package adapt

// Design note. Audio and video are transcoded by Debian's ffmpeg and ffprobe,
// run as child processes (never through a shell) with the input and output
// in files of a private temporary directory that is removed afterwards.
// Every call is bounded: the input by MaxInputBytes, the work by Timeout
// (one deadline for all the runs of a call), the output by ffmpeg's -fs.
//
// Attachments come from strangers, and ffmpeg's demuxers can follow
// references (HLS or concat playlists naming local files or URLs). Inputs
// are therefore opened with -protocol_whitelist file and a whitelist of
// plain media demuxers, so that a playlist is refused, not followed; the
// output drops all metadata (-map_metadata -1: a phone's video carries its
// location).
//
// The byte budget is met by a size model, checked after each encode:
//
//	size ≈ overhead + k · duration · (video + audio bitrate) / 8
//
// The first encode assumes k a little above 1; when the output is larger
// than the budget, k is measured from it and the plan is made again (at
// most maxAttempts encodes). Lower bitrates come first; when even the
// lowest does not fit, the clip is cut to the duration that fits, and
// Clip.Cut says so. AMR-NB is constant-rate, so its first plan fits; the
// retries are for AAC and above all for video, where H.263 at its coarsest
// quantiser can exceed its target by a factor of two or more.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of a Transcoder's zero fields.
const (
	DefaultTranscodeTimeout  = 60 * time.Second
	DefaultMaxTranscodeInput = 64 << 20
)

// Errors reported (wrapped in a *TranscodeError) by Transcoder.Audio and
// Transcoder.Video. ErrDoesNotFit is reported too, when not even a short
// start of the clip fits the budget at the lowest bitrate.
var (
	// ErrNoTool: ffmpeg or ffprobe could not be run (or their private
	// work directory not made), or the build lacks every encoder that
	// could be used.
	ErrNoTool = errors.New("ffmpeg not available")
	// ErrInputTooLarge: the input is over Transcoder.MaxInputBytes;
	// nothing was run.
	ErrInputTooLarge = errors.New("input too large to transcode")
	// ErrUndecodable: ffprobe or ffmpeg cannot read the input, or it has
	// no stream of the kind asked for.
	ErrUndecodable = errors.New("cannot decode media")
	// ErrTimeout: the call took longer than Transcoder.Timeout.
	ErrTimeout = errors.New("transcoding timed out")
)

// A TranscodeError reports why a clip could not be transcoded. Err is one of
// ErrNoTool, ErrInputTooLarge, ErrUndecodable, ErrTimeout or ErrDoesNotFit.
type TranscodeError struct {
	Kind   string // "audio" or "video"
	Err    error
	Detail string // optional: the tool's last error lines, or a reason
}

func (e *TranscodeError) Error() string {
	s := "adapt: " + e.Kind + ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *TranscodeError) Unwrap() error { return e.Err }

// Content types that a Transcoder produces.
const (
	TypeAMR       = "audio/amr"  // AMR-NB, 8 kHz mono, RFC 4867 storage format
	TypeAudio3GPP = "audio/3gpp" // AAC in a 3GPP file
	TypeVideo3GPP = "video/3gpp" // H.264 baseline or H.263, with AMR-NB or AAC
)

// A Clip is transcoded audio or video.
type Clip struct {
	Data        []byte
	ContentType string        // TypeAMR, TypeAudio3GPP or TypeVideo3GPP
	Duration    time.Duration // of Data, as ffprobe reads it
	Original    time.Duration // of the input
	// Cut is set when only the start of the input fit the budget: Data
	// holds its first Duration.
	Cut bool
}

// A Transcoder converts audio to AMR-NB (or AAC in 3GPP where the ffmpeg
// build lacks the AMR encoder) and video to 3GPP within a byte budget, by
// running ffmpeg and ffprobe. The zero value runs "ffmpeg" and "ffprobe" from
// PATH with the default limits. A Transcoder is safe for concurrent use and
// must not be copied after first use: it remembers which encoders the
// ffmpeg build has.
type Transcoder struct {
	FFmpeg, FFprobe string        // program names or paths; "" means "ffmpeg", "ffprobe"
	Timeout         time.Duration // bounds one Audio or Video call; 0 means DefaultTranscodeTimeout
	MaxInputBytes   int           // larger inputs are refused; 0 means DefaultMaxTranscodeInput
	TempDir         string        // where private work directories are made; "" means os.TempDir()

	mu       sync.Mutex
	encoders map[string]bool // nil until listed once
}

// Bounds of the plan.
const (
	minClip       = time.Second // a shorter cut is not worth sending
	maxAttempts   = 4
	minVideoRate  = 20_000 // bit/s at QCIF, 10 frames/s
	cifVideoRate  = 256_000
	minAACRate    = 8_000
	maxAACRate    = 64_000
	amrFrame      = 20 * time.Millisecond
	amrHeader     = 6 // "#!AMR\n"
	maxVideoPixel = 7680 * 4320
	mediaFormats  = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,asf,flv,mpeg,mpegts,ogg,wav,w64,aiff,caf,au,flac,mp3,aac,amr,amrnb,amrwb,ac3,eac3,wv,ape,tta,mpc,mpc8,voc,mjpeg,h263,h264,hevc,m4v,rm,nut,ivf,dv,gsm,smjpeg,xwma,dts,truehd,mlp,sox,rso,iff"
)

// amrModes are AMR-NB's bitrates with the bytes of one 20 ms frame in the
// storage format (RFC 4867 section 5: one header octet, then the speech
// bits rounded up to octets).
var amrModes = []struct{ rate, frame int }{
	{4750, 13}, {5150, 14}, {5900, 16}, {6700, 18}, {7400, 20}, {7950, 21}, {10200, 27}, {12200, 32},
}

func (t *Transcoder) ffmpeg() string  { return orDefault(t.FFmpeg, "ffmpeg") }
func (t *Transcoder) ffprobe() string { return orDefault(t.FFprobe, "ffprobe") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (t *Transcoder) maxInput() int {
	if t.MaxInputBytes > 0 {
		return t.MaxInputBytes
	}
	return DefaultMaxTranscodeInput
}

// Audio transcodes the audio of data (any format ffmpeg reads; video streams
// are ignored) to at most budget bytes: AMR-NB at the highest of its
// bitrates that fits, 4.75 to 12.2 kbit/s, or, where ffmpeg lacks the
// libopencore_amrnb encoder, AAC in 3GPP at 8 to 64 kbit/s. A clip too long
// for the lowest bitrate is cut (Clip.Cut). Errors are *TranscodeError, or
// ctx's error when ctx is done.
func (t *Transcoder) Audio(ctx context.Context, data []byte, budget int) (*Clip, error) {
	return t.run(ctx, "audio", data, budget)
}

// Video transcodes data to a 3GPP video of at most budget bytes: H.264
// baseline (H.263 where ffmpeg lacks libx264), scaled down into 176×144, or
// 352×288 when the budget allows 256 kbit/s, with the input's first audio
// stream as AMR-NB or AAC. A clip too long for the lowest bitrate is cut
// (Clip.Cut). Input with audio and no video gives an audio clip, as Audio
// does. Errors are *TranscodeError, or ctx's error when ctx is done.
func (t *Transcoder) Video(ctx context.Context, data []byte, budget int) (*Clip, error) {
	return t.run(ctx, "video", data, budget)
}

func (t *Transcoder) run(ctx context.Context, kind string, data []byte, budget int) (clip *Clip, err error) {
	if len(data) > t.maxInput() {
		return nil, &TranscodeError{Kind: kind, Err: ErrInputTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(data), t.maxInput())}
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTranscodeTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		// A deadline of ours is the clip's failure; the caller's is the
		// caller's.
		if err != nil && ctx.Err() != nil {
			clip, err = nil, ctx.Err()
		} else if err != nil && cctx.Err() != nil {
			clip, err = nil, &TranscodeError{Kind: kind, Err: ErrTimeout, Detail: timeout.String()}
		}
	}()
	dir, err := os.MkdirTemp(t.TempDir, "mmsrelay-transcode-")
	if err != nil {
		return nil, &TranscodeError{Kind: kind, Err: ErrNoTool, Detail: err.Error()}
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		return nil, &TranscodeError{Kind: kind, Err: ErrNoTool, Detail: err.Error()}
	}
	enc, err := t.listEncoders(cctx)
	if err != nil {
		return nil, &TranscodeError{Kind: kind, Err: ErrNoTool, Detail: err.Error()}
	}
	pr, err := t.probe(cctx, dir, in)
	if err != nil {
		return nil, &TranscodeError{Kind: kind, Err: toolOr(err, ErrUndecodable), Detail: err.Error()}
	}
	if kind == "video" && !pr.video && pr.audio {
		kind = "audio"
	}
	if (kind == "video" && !pr.video) || (kind == "audio" && !pr.audio) {
		return nil, &TranscodeError{Kind: kind, Err: ErrUndecodable, Detail: "no " + kind + " stream"}
	}
	if pr.duration <= 0 {
		return nil, &TranscodeError{Kind: kind, Err: ErrUndecodable, Detail: "unknown duration"}
	}
	if kind == "video" && int64(pr.width)*int64(pr.height) > maxVideoPixel {
		return nil, &TranscodeError{Kind: kind, Err: ErrUndecodable, Detail: fmt.Sprintf("%d×%d is too large", pr.width, pr.height)}
	}
	p, err := newPlan(kind, pr, enc)
	if err != nil {
		return nil, &TranscodeError{Kind: kind, Err: ErrNoTool, Detail: err.Error()}
	}
	out := filepath.Join(dir, "out"+p.ext)
	k := 1.05
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if !p.solve(budget, k) {
			return nil, &TranscodeError{Kind: kind, Err: ErrDoesNotFit,
				Detail: fmt.Sprintf("not even %v fits %d bytes", minClip, budget)}
		}
		if err := t.exec(cctx, dir, t.ffmpeg(), p.args(in, out, budget)...); err != nil {
			return nil, &TranscodeError{Kind: kind, Err: toolOr(err, ErrUndecodable), Detail: err.Error()}
		}
		b, err := os.ReadFile(out)
		if err == nil && len(b) == 0 {
			err = errors.New("ffmpeg wrote nothing")
		}
		if err != nil {
			return nil, &TranscodeError{Kind: kind, Err: ErrUndecodable, Detail: err.Error()}
		}
		if len(b) <= budget {
			opr, err := t.probe(cctx, dir, out)
			if err != nil {
				return nil, &TranscodeError{Kind: kind, Err: toolOr(err, ErrUndecodable), Detail: "output: " + err.Error()}
			}
			if p.kind == "audio" && p.amr {
				// ffprobe estimates a raw AMR file's duration from a
				// bitrate without the frame headers: count the frames.
				opr.duration = time.Duration((len(b)-amrHeader)/p.amrFrameBytes()) * amrFrame
			}
			return &Clip{Data: b, ContentType: p.contentType, Duration: opr.duration, Original: pr.duration,
				Cut: p.dur < pr.duration}, nil
		}
		// Learn how far the encoder overshot its target, and plan again.
		if est := p.estimate(1); len(b) > p.overhead() && est > p.overhead() {
			k = max(k, float64(len(b)-p.overhead())/float64(est-p.overhead())) * 1.05
		} else {
			k *= 1.5
		}
	}
	return nil, &TranscodeError{Kind: kind, Err: ErrDoesNotFit, Detail: fmt.Sprintf("still over %d bytes after %d tries", budget, maxAttempts)}
}

// toolOr is ErrNoTool when err says that a program could not be started,
// else def.
func toolOr(err, def error) error {
	if errors.Is(err, errStart) {
		return ErrNoTool
	}
	return def
}

// errStart marks the failure to start a program (not found, not
// executable), as opposed to the program failing.
var errStart = errors.New("cannot start")

// A plan is one encode: codecs, size, bitrates and duration.
type plan struct {
	kind        string
	contentType string
	ext         string
	full        time.Duration // of the input
	hasAudio    bool
	amr         bool   // audio codec: AMR-NB, else AAC
	video       string // "libx264" or "h263"; "" for audio

	dur          time.Duration // to encode (≤ full)
	aRate, vRate int           // bit/s
	w, h, fps    int
}

func newPlan(kind string, pr probeResult, enc map[string]bool) (*plan, error) {
	p := &plan{kind: kind, full: pr.duration, hasAudio: pr.audio, amr: enc["libopencore_amrnb"]}
	if !p.amr && !enc["aac"] {
		return nil, errors.New("neither libopencore_amrnb nor aac encoder")
	}
	if kind == "audio" {
		p.contentType, p.ext = TypeAudio3GPP, ".3gp"
		if p.amr {
			p.contentType, p.ext = TypeAMR, ".amr"
		}
		return p, nil
	}
	p.contentType, p.ext = TypeVideo3GPP, ".3gp"
	switch {
	case enc["libx264"]:
		p.video = "libx264"
	case enc["h263"]:
		p.video = "h263"
	default:
		return nil, errors.New("neither libx264 nor h263 encoder")
	}
	return p, nil
}

// overhead is the container's share, in bytes, that does not grow with the
// bitrate.
func (p *plan) overhead() int {
	switch {
	case p.kind == "audio" && p.amr:
		return amrHeader
	case p.kind == "audio":
		return 1024 + int(p.dur.Seconds()*8*8) // moov, ~8 sample-table bytes per AAC frame
	}
	return 4096 + int(p.dur.Seconds()*float64(p.fps+8)*16)
}

// estimate is the expected output size for encoder overshoot k.
func (p *plan) estimate(k float64) int {
	bits := float64(p.vRate)
	if p.kind == "audio" || p.hasAudio {
		bits += float64(p.effAudio())
	}
	return p.overhead() + int(math.Ceil(k*p.dur.Seconds()*bits/8))
}

// amrFrameBytes is the size of one frame at the AMR mode aRate.
func (p *plan) amrFrameBytes() int {
	for _, m := range amrModes {
		if m.rate == p.aRate {
			return m.frame
		}
	}
	return amrModes[len(amrModes)-1].frame
}

// effAudio is the audio bitrate as it counts in the file: an AMR frame
// carries a header octet and padding.
func (p *plan) effAudio() int {
	if p.amr {
		return p.amrFrameBytes() * 8 * int(time.Second/amrFrame)
	}
	return p.aRate
}

// solve picks bitrates, size and duration so that estimate(k) fits budget
// with a small margin. It reports false when not even minClip fits.
func (p *plan) solve(budget int, k float64) bool {
	target := budget - budget/32
	p.dur = p.full
	fits := func() bool { return p.estimate(k) <= target }
	if p.kind == "audio" {
		if p.amr {
			for i := len(amrModes) - 1; i >= 0; i-- {
				if p.aRate = amrModes[i].rate; fits() {
					return true
				}
			}
		} else {
			for r := maxAACRate; r >= minAACRate; r -= 2000 {
				if p.aRate = r; fits() {
					return true
				}
			}
		}
		return p.cut(target, k)
	}
	// Video: give audio a low rate, the rest to the picture.
	p.aRate = 0
	if p.hasAudio {
		p.aRate = 12000
		if p.amr {
			p.aRate = 4750
		}
	}
	p.w, p.h, p.fps = 176, 144, 10
	p.vRate = 0
	avail := float64(target-p.overhead()) * 8 / k / p.dur.Seconds()
	if p.hasAudio {
		avail -= float64(p.effAudio())
	}
	v := int(avail * 0.97)
	if v < minVideoRate {
		p.vRate = minVideoRate
		return p.cut(target, k)
	}
	if p.hasAudio && v >= 160_000 {
		p.aRate = 24000
		if p.amr {
			p.aRate = 12200
		}
		v -= p.effAudio()
	}
	p.vRate = min(v, 1_000_000)
	if p.vRate >= 64_000 {
		p.fps = 15
	}
	if p.vRate >= cifVideoRate {
		p.w, p.h = 352, 288
	}
	if !fits() {
		return p.cut(target, k)
	}
	return true
}

// cut shortens the clip, at the rates set, to the longest that fits.
func (p *plan) cut(target int, k float64) bool {
	lo, hi := time.Duration(0), p.full
	for hi-lo > 100*time.Millisecond {
		p.dur = (lo + hi) / 2
		if p.estimate(k) <= target {
			lo = p.dur
		} else {
			hi = p.dur
		}
	}
	p.dur = lo.Truncate(100 * time.Millisecond)
	return p.dur >= minClip
}

// args is ffmpeg's command line for the plan.
func (p *plan) args(in, out string, budget int) []string {
	a := inputArgs("file:" + in)
	if p.dur < p.full {
		a = append(a, "-t", strconv.FormatFloat(p.dur.Seconds(), 'f', 3, 64))
	}
	a = append(a, "-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn")
	audio := func() {
		if p.amr {
			a = append(a, "-c:a", "libopencore_amrnb", "-ar", "8000", "-ac", "1", "-b:a", strconv.Itoa(p.aRate))
			return
		}
		sr := "8000"
		switch {
		case p.aRate >= 32000:
			sr = "22050"
		case p.aRate >= 16000:
			sr = "16000"
		}
		a = append(a, "-c:a", "aac", "-ar", sr, "-ac", "1", "-b:a", strconv.Itoa(p.aRate))
	}
	if p.kind == "audio" {
		a = append(a, "-map", "0:a:0", "-vn")
		audio()
		f := "3gp"
		if p.amr {
			f = "amr"
		}
		return append(a, "-fs", strconv.Itoa(budget+budget/2+4096), "-f", f, "-y", "file:"+out)
	}
	a = append(a, "-map", "0:v:0")
	if p.hasAudio {
		a = append(a, "-map", "0:a:0")
		audio()
	}
	scale := fmt.Sprintf("scale=w='min(%d,iw)':h='min(%d,ih)':force_original_aspect_ratio=decrease:force_divisible_by=2", p.w, p.h)
	rate := strconv.Itoa(p.vRate)
	switch p.video {
	case "h263":
		// H.263 knows a few picture sizes only: letterbox into one.
		scale += fmt.Sprintf(",pad=%d:%d:(ow-iw)/2:(oh-ih)/2", p.w, p.h)
		a = append(a, "-c:v", "h263", "-b:v", rate)
	default:
		a = append(a, "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast",
			"-b:v", rate, "-maxrate", rate, "-bufsize", strconv.Itoa(2*p.vRate))
	}
	a = append(a, "-vf", scale, "-pix_fmt", "yuv420p", "-r", strconv.Itoa(p.fps), "-g", strconv.Itoa(4*p.fps))
	return append(a, "-fs", strconv.Itoa(budget+budget/2+16384), "-f", "3gp", "-movflags", "+faststart", "-y", "file:"+out)
}

// inputArgs opens one local file with the plain media demuxers only.
func inputArgs(in string) []string {
	return []string{"-nostdin", "-hide_banner", "-loglevel", "error",
		"-protocol_whitelist", "file", "-format_whitelist", mediaFormats, "-i", in}
}

type probeResult struct {
	duration      time.Duration
	audio, video  bool
	width, height int
}

// probe reads a file's duration and streams with ffprobe.
func (t *Transcoder) probe(ctx context.Context, dir, file string) (probeResult, error) {
	var out bytes.Buffer
	args := []string{"-v", "error", "-hide_banner", "-protocol_whitelist", "file", "-format_whitelist", mediaFormats,
		"-show_entries", "format=duration:stream=codec_type,width,height,duration,disposition", "-of", "json", "file:" + file}
	if err := t.execOut(ctx, dir, &out, t.ffprobe(), args...); err != nil {
		return probeResult{}, err
	}
	var j struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			Type        string         `json:"codec_type"`
			Width       int            `json:"width"`
			Height      int            `json:"height"`
			Duration    string         `json:"duration"`
			Disposition map[string]int `json:"disposition"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		return probeResult{}, fmt.Errorf("ffprobe output: %w", err)
	}
	var r probeResult
	secs := func(s string) time.Duration {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || math.IsInf(f, 0) || f > 1e6 {
			return 0
		}
		return time.Duration(f * float64(time.Second))
	}
	r.duration = secs(j.Format.Duration)
	for _, s := range j.Streams {
		switch s.Type {
		case "audio":
			r.audio = true
		case "video":
			if s.Disposition["attached_pic"] == 1 {
				continue // cover art, not video
			}
			if !r.video {
				r.width, r.height = s.Width, s.Height
			}
			r.video = true
		default:
			continue
		}
		if r.duration == 0 {
			r.duration = max(r.duration, secs(s.Duration))
		}
	}
	return r, nil
}

// listEncoders returns the encoders of the ffmpeg build, listed once.
func (t *Transcoder) listEncoders(ctx context.Context) (map[string]bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.encoders != nil {
		return t.encoders, nil
	}
	var out bytes.Buffer
	if err := t.execOut(ctx, "", &out, t.ffmpeg(), "-nostdin", "-hide_banner", "-encoders"); err != nil {
		return nil, err
	}
	t.encoders = parseEncoders(out.String())
	return t.encoders, nil
}

// parseEncoders reads `ffmpeg -encoders`: after a legend ending in "------",
// lines such as " A..... aac   AAC (Advanced Audio Coding)".
func parseEncoders(s string) map[string]bool {
	m := map[string]bool{}
	_, list, ok := strings.Cut(s, "------")
	if !ok {
		list = s
	}
	for line := range strings.Lines(list) {
		f := strings.Fields(line)
		if len(f) >= 2 && len(f[0]) == 6 {
			m[f[1]] = true
		}
	}
	return m
}

func (t *Transcoder) exec(ctx context.Context, dir, prog string, args ...string) error {
	return t.execOut(ctx, dir, nil, prog, args...)
}

// execOut runs prog in dir with no standard input, stdout to out (at most
// 1 MiB kept), and returns an error with the last lines of its stderr.
func (t *Transcoder) execOut(ctx context.Context, dir string, out *bytes.Buffer, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if out != nil {
		cmd.Stdout = &limitBuffer{b: out, n: 1 << 20}
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, ok := err.(*exec.ExitError); !ok {
			return fmt.Errorf("%w: %v", errStart, err)
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s: %v: %s", filepath.Base(prog), err, msg)
		}
		return fmt.Errorf("%s: %w", filepath.Base(prog), err)
	}
	return nil
}

// tailBuffer keeps the last 2 KiB written to it.
type tailBuffer struct{ b []byte }

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	if over := len(w.b) - 2048; over > 0 {
		w.b = w.b[over:]
	}
	return len(p), nil
}

func (w *tailBuffer) String() string { return string(w.b) }

// limitBuffer keeps the first n bytes written to it.
type limitBuffer struct {
	b *bytes.Buffer
	n int
}

func (w *limitBuffer) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
