package adapt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/mmsrelay/mmsrelay/adapt/internal/testimg"
)

func mustProfile(t testing.TB, name string) Profile {
	t.Helper()
	p, ok := LookupProfile(name)
	if !ok {
		t.Fatalf("LookupProfile(%q) not found", name)
	}
	return p
}

func decodeOut(t *testing.T, im Image) image.Image {
	t.Helper()
	m, format, err := image.Decode(bytes.NewReader(im.Data))
	if err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	if "image/"+format != im.ContentType {
		t.Errorf("output format %s, ContentType %s", format, im.ContentType)
	}
	if b := m.Bounds(); b.Dx() != im.Width || b.Dy() != im.Height {
		t.Errorf("output is %v, Image says %dx%d", b, im.Width, im.Height)
	}
	return m
}

func TestProfiles(t *testing.T) {
	tests := []struct {
		name  string
		bytes int
		w, h  int
	}{
		{"default", 600 * 1024, 1600, 1200},
		{"basic", 300 * 1024, 640, 480},
		{"large", 1024 * 1024, 3000, 3000},
	}
	for _, tt := range tests {
		p := mustProfile(t, tt.name)
		if p.MaxMessageBytes != tt.bytes || p.MaxWidth != tt.w || p.MaxHeight != tt.h || p.MaxPixels != DefaultMaxPixels {
			t.Errorf("LookupProfile(%q) = %+v", tt.name, p)
		}
		if !p.Allows("image/JPEG; name=x.jpg") || p.Allows("application/pdf") {
			t.Errorf("%s: Allows wrong", tt.name)
		}
	}
	if _, ok := LookupProfile("nope"); ok {
		t.Error("LookupProfile(nope) found")
	}
	if len(Profiles()) != 3 {
		t.Errorf("Profiles() = %d profiles", len(Profiles()))
	}
}

func TestFitImageLargeJPEG(t *testing.T) {
	t.Parallel()
	p := mustProfile(t, "basic")
	data := testimg.JPEG(testimg.Photo(1300, 812, 1), 95)
	for _, budget := range []int{300 * 1024, 40 * 1024, 6 * 1024} {
		im, err := FitImage(context.Background(), data, budget, p)
		if err != nil {
			t.Fatalf("FitImage(budget %d) = %v", budget, err)
		}
		if len(im.Data) > budget {
			t.Errorf("FitImage(budget %d) size = %d", budget, len(im.Data))
		}
		m := decodeOut(t, im)
		if budget >= 40*1024 && (m.Bounds().Dx() != 640 || m.Bounds().Dy() != 400) {
			t.Errorf("FitImage(budget %d) dims = %v, want 640x400", budget, m.Bounds())
		}
		if budget < 40*1024 && m.Bounds().Dx() >= 640 {
			t.Errorf("FitImage(budget %d) dims = %v, want smaller than 640x400", budget, m.Bounds())
		}
		if m.Bounds().Dx() > 640 || m.Bounds().Dy() > 480 {
			t.Errorf("dims %v exceed profile", m.Bounds())
		}
	}
}

func TestFitImagePassThrough(t *testing.T) {
	p := mustProfile(t, "default")
	data := testimg.JPEG(testimg.Photo(320, 240, 2), 80)
	im, err := FitImage(context.Background(), data, len(data), p)
	if err != nil {
		t.Fatal(err)
	}
	if !im.Unchanged || !bytes.Equal(im.Data, data) || im.Width != 320 || im.Height != 240 {
		t.Errorf("FitImage(small) = unchanged %v, %dx%d", im.Unchanged, im.Width, im.Height)
	}
}

// exifJPEG inserts an APP1 Exif segment with the given orientation after SOI.
func exifJPEG(jpg []byte, o uint16, order binary.ByteOrder) []byte {
	var tiffB bytes.Buffer
	if order == binary.LittleEndian {
		tiffB.WriteString("II")
	} else {
		tiffB.WriteString("MM")
	}
	w := func(v any) { binary.Write(&tiffB, order, v) }
	w(uint16(42))
	w(uint32(8))
	w(uint16(2)) // two entries
	// 0x010F Make, ASCII, count 4, inline "Go\0\0"
	w(uint16(0x010F))
	w(uint16(2))
	w(uint32(4))
	tiffB.WriteString("Go\x00\x00")
	w(uint16(0x0112))
	w(uint16(3))
	w(uint32(1))
	w(o)
	w(uint16(0))
	w(uint32(0))
	seg := append([]byte("Exif\x00\x00"), tiffB.Bytes()...)
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

func TestOrientation(t *testing.T) {
	t.Parallel()
	// Left half red, right half blue, 80×40.
	src := image.NewRGBA(image.Rect(0, 0, 80, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 80; x++ {
			c := color.RGBA{220, 20, 20, 255}
			if x >= 40 {
				c = color.RGBA{20, 20, 220, 255}
			}
			src.SetRGBA(x, y, c)
		}
	}
	base := testimg.JPEG(src, 95)
	isRed := func(c color.Color) bool { r, _, b, _ := c.RGBA(); return r > 2*b }
	tests := []struct {
		o          uint16
		w, h       int
		redAt      image.Point // a point that must be red
		blueAt     image.Point
		byteOrders []binary.ByteOrder
	}{
		{1, 80, 40, image.Pt(5, 20), image.Pt(75, 20), nil},
		{2, 80, 40, image.Pt(75, 20), image.Pt(5, 20), nil},
		{3, 80, 40, image.Pt(75, 20), image.Pt(5, 20), nil},
		{6, 40, 80, image.Pt(20, 5), image.Pt(20, 75), nil}, // 90° clockwise: left goes to top
		{8, 40, 80, image.Pt(20, 75), image.Pt(20, 5), nil},
		{5, 40, 80, image.Pt(20, 5), image.Pt(20, 75), nil},
		{7, 40, 80, image.Pt(20, 75), image.Pt(20, 5), nil},
	}
	p := mustProfile(t, "default")
	for _, tt := range tests {
		for _, bo := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
			data := exifJPEG(base, tt.o, bo)
			if got := jpegOrientation(data); got != int(tt.o) {
				t.Fatalf("jpegOrientation(%d, %v) = %d", tt.o, bo, got)
			}
			im, err := FitImage(context.Background(), data, 100*1024, p)
			if err != nil {
				t.Fatal(err)
			}
			m := decodeOut(t, im)
			if m.Bounds().Dx() != tt.w || m.Bounds().Dy() != tt.h {
				t.Errorf("orientation %d: dims %v, want %dx%d", tt.o, m.Bounds(), tt.w, tt.h)
			}
			if !isRed(m.At(tt.redAt.X, tt.redAt.Y)) || isRed(m.At(tt.blueAt.X, tt.blueAt.Y)) {
				t.Errorf("orientation %d: colours not where expected", tt.o)
			}
		}
	}
	// Portrait after rotation: an 800×600 stored image with orientation 6
	// is shown 600 wide by 800 high, so under "basic" it fits 480×640.
	big := exifJPEG(testimg.JPEG(testimg.Photo(800, 600, 4), 85), 6, binary.BigEndian)
	im, err := FitImage(context.Background(), big, 300*1024, mustProfile(t, "basic"))
	if err != nil {
		t.Fatal(err)
	}
	if im.Width != 480 || im.Height != 640 {
		t.Errorf("rotated fit = %dx%d, want 480x640", im.Width, im.Height)
	}
}

func TestExifMalformed(t *testing.T) {
	for _, b := range [][]byte{
		nil, {0xFF, 0xD8}, {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08, 'E', 'x', 'i', 'f', 0, 0},
		{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 'E'},
		append([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10}, []byte("Exif\x00\x00MM\x00\x2a\xff\xff\xff\xff")...),
	} {
		if o := jpegOrientation(b); o != 1 {
			t.Errorf("jpegOrientation(%x) = %d, want 1", b, o)
		}
	}
}

// pngHeader returns a PNG with only a valid IHDR claiming w×h (and no data).
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6
	binary.Write(&b, binary.BigEndian, uint32(13))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestBombsRefused(t *testing.T) {
	p := mustProfile(t, "default")
	jpg := testimg.JPEG(testimg.Photo(64, 48, 1), 80)
	i := bytes.Index(jpg, []byte{0xFF, 0xC0})
	bigJPEG := bytes.Clone(jpg)
	copy(bigJPEG[i+5:], []byte{0xEA, 0x60, 0xEA, 0x60}) // 60000×60000

	// Animated GIF: 30 frames of 200×200 under a 1 MP limit.
	anim := &gif.GIF{}
	for f := 0; f < 30; f++ {
		anim.Image = append(anim.Image, image.NewPaletted(image.Rect(0, 0, 200, 200), palette.Plan9[:16]))
		anim.Delay = append(anim.Delay, 10)
	}
	var gb bytes.Buffer
	if err := gif.EncodeAll(&gb, anim); err != nil {
		t.Fatal(err)
	}
	small := p
	small.MaxPixels = 1_000_000

	cases := []struct {
		name string
		data []byte
		p    Profile
	}{
		{"png 100000²", pngHeader(100000, 100000), p},
		{"jpeg 60000²", bigJPEG, p},
		{"gif frames×area", gb.Bytes(), small},
	}
	for _, tc := range cases {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := FitImage(context.Background(), tc.data, 100*1024, tc.p)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooManyPixels) {
			t.Errorf("%s: FitImage = %v, want ErrTooManyPixels", tc.name, err)
		}
		var ie *ImageError
		if !errors.As(err, &ie) {
			t.Errorf("%s: error %T is not *ImageError", tc.name, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
			t.Errorf("%s: allocated %d bytes before refusing", tc.name, alloc)
		}
	}
	// The same GIF fits under the default limit and, being small, passes.
	im, err := FitImage(context.Background(), gb.Bytes(), 100*1024, p)
	if err != nil || !im.Unchanged || im.ContentType != "image/gif" {
		t.Errorf("animated GIF = %v, %v, want unchanged", im.ContentType, err)
	}
}

func TestBroken(t *testing.T) {
	p := mustProfile(t, "default")
	jpg := testimg.JPEG(testimg.Photo(300, 200, 1), 80)
	for name, data := range map[string][]byte{
		"truncated jpeg": jpg[:len(jpg)/3],
		"png no data":    pngHeader(100, 100),
		"garbage gif":    []byte("GIF89a\x10\x00\x10\x00garbage"),
	} {
		_, err := FitImage(context.Background(), data, 10, p)
		if !errors.Is(err, ErrBroken) {
			t.Errorf("%s: FitImage = %v, want ErrBroken", name, err)
		}
	}
	if _, err := FitImage(context.Background(), []byte("%PDF-1.4"), 10, p); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("pdf: FitImage = %v, want ErrUnsupportedFormat", err)
	}
}

func encodePNG(t testing.TB, m image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPNG(t *testing.T) {
	t.Parallel()
	p := mustProfile(t, "basic")
	// Opaque photo PNG, too large in dims: becomes JPEG.
	photo := encodePNG(t, testimg.Photo(700, 560, 5))
	im, err := FitImage(context.Background(), photo, 60*1024, p)
	if err != nil {
		t.Fatal(err)
	}
	if im.ContentType != "image/jpeg" || im.Width != 600 || im.Height != 480 || len(im.Data) > 60*1024 {
		t.Errorf("opaque PNG -> %s %dx%d %d bytes", im.ContentType, im.Width, im.Height, len(im.Data))
	}
	decodeOut(t, im)
	// Transparent logo: stays PNG with alpha.
	logo := image.NewNRGBA(image.Rect(0, 0, 800, 400))
	for y := 80; y < 320; y++ {
		for x := 80; x < 720; x++ {
			logo.SetNRGBA(x, y, color.NRGBA{200, 30, 30, 255})
		}
	}
	im, err = FitImage(context.Background(), encodePNG(t, logo), 60*1024, p)
	if err != nil {
		t.Fatal(err)
	}
	if im.ContentType != "image/png" || im.Width != 640 || im.Height != 320 {
		t.Errorf("alpha PNG -> %s %dx%d", im.ContentType, im.Width, im.Height)
	}
	m := decodeOut(t, im)
	if _, _, _, a := m.At(5, 5).RGBA(); a != 0 {
		t.Errorf("corner alpha = %d, want 0", a)
	}
	if r, _, _, a := m.At(320, 160).RGBA(); a != 0xffff || r>>8 < 190 {
		t.Errorf("centre = r %d a %d", r>>8, a)
	}
}

func TestGIFTooLarge(t *testing.T) {
	p := mustProfile(t, "basic")
	anim := &gif.GIF{}
	for f := 0; f < 3; f++ {
		fr := image.NewPaletted(image.Rect(0, 0, 800, 600), palette.Plan9)
		for i := range fr.Pix {
			fr.Pix[i] = uint8(i*7/800 + f)
		}
		anim.Image = append(anim.Image, fr)
		anim.Delay = append(anim.Delay, 10)
	}
	var gb bytes.Buffer
	if err := gif.EncodeAll(&gb, anim); err != nil {
		t.Fatal(err)
	}
	im, err := FitImage(context.Background(), gb.Bytes(), 150*1024, p)
	if err != nil {
		t.Fatal(err)
	}
	if im.Unchanged || im.Width != 640 || im.Height != 480 || len(im.Data) > 150*1024 {
		t.Errorf("big GIF -> %s %dx%d %d bytes", im.ContentType, im.Width, im.Height, len(im.Data))
	}
	decodeOut(t, im)
}

func TestOtherFormats(t *testing.T) {
	t.Parallel()
	p := mustProfile(t, "basic")
	photo := testimg.Photo(660, 500, 6)
	var bb, tb bytes.Buffer
	if err := bmp.Encode(&bb, photo); err != nil {
		t.Fatal(err)
	}
	if err := tiff.Encode(&tb, photo, &tiff.Options{Compression: tiff.Deflate}); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"bmp": bb.Bytes(), "tiff": tb.Bytes()} {
		im, err := FitImage(context.Background(), data, 80*1024, p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if im.ContentType != "image/jpeg" || im.Width != 634 || im.Height != 480 || len(im.Data) > 80*1024 {
			t.Errorf("%s -> %s %dx%d %d bytes", name, im.ContentType, im.Width, im.Height, len(im.Data))
		}
		decodeOut(t, im)
	}
}

// TestHEIC uses the sample files shipped in the heic module, read where they
// lie in the module cache; it skips when they are not there.
func TestHEIC(t *testing.T) {
	if testing.Short() || (raceEnabled && os.Getenv("ADAPT_TEST_HEIC") == "") {
		t.Skip("compiling the wasm decoder takes seconds (minutes under -race; set ADAPT_TEST_HEIC=1)")
	}
	dir := os.Getenv("GOMODCACHE")
	if dir == "" {
		dir = filepath.Join(os.Getenv("HOME"), "go", "pkg", "mod")
	}
	data, err := os.ReadFile(filepath.Join(dir, "github.com", "gen2brain", "heic@v0.4.5", "testdata", "test8.heic"))
	if err != nil {
		t.Skip("heic sample not in module cache:", err)
	}
	t.Logf("HEIC backend: %s", HEICBackend())
	Init()
	p := mustProfile(t, "basic")
	im, err := FitImage(context.Background(), data, 30*1024, p)
	if err != nil {
		t.Fatal(err)
	}
	if im.ContentType != "image/jpeg" || len(im.Data) > 30*1024 || im.Width > 640 || im.Height > 640 {
		t.Errorf("heic -> %s %dx%d %d bytes", im.ContentType, im.Width, im.Height, len(im.Data))
	}
	decodeOut(t, im)
}

func TestFit(t *testing.T) {
	t.Parallel()
	p := mustProfile(t, "basic")
	budget := 100 * 1024
	photo1 := testimg.JPEG(testimg.Photo(1000, 750, 7), 92)
	photo2 := testimg.JPEG(testimg.Photo(700, 500, 8), 92)
	tiny := testimg.JPEG(testimg.Photo(100, 100, 9), 80)
	items := []Item{
		{"hello.txt", "text/plain; charset=utf-8", []byte(strings.Repeat("é", 4000))},
		{"photo1.jpg", "image/jpeg", photo1},
		{"invoice.pdf", "application/pdf", make([]byte, 1258291)},
		{"voice.amr", "audio/amr", make([]byte, 20*1024)},
		{"tiny.jpg", "image/jpeg", tiny},
		{"movie.3gp", "video/3gpp", make([]byte, 2<<20)},
		{"photo2.png", "image/png", photo2}, // mislabelled JPEG
		{"broken.jpg", "image/jpeg", photo1[:500]},
	}
	res, err := Fit(context.Background(), items, budget, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size() > budget {
		t.Errorf("Fit total = %d, want ≤ %d", res.Size(), budget)
	}
	var kept []string
	for _, it := range res.Items {
		kept = append(kept, it.Name)
	}
	if got, want := strings.Join(kept, ","), "hello.txt,photo1.jpg,voice.amr,tiny.jpg,photo2.jpg"; got != want {
		t.Errorf("kept = %s, want %s", got, want)
	}
	if n := len(res.Items[0].Data); n > p.MaxTextBytes {
		t.Errorf("text is %d bytes, want ≤ %d", n, p.MaxTextBytes)
	}
	wantNotes := []string{
		"[invoice.pdf (1.2 MB) was not sent (unsupported type)]",
		"[movie.3gp (2.0 MB) was not sent (too large)]",
		"[broken.jpg (500 bytes) was not sent (broken image)]",
	}
	if len(res.Dropped) != len(wantNotes) {
		t.Fatalf("Dropped = %+v", res.Dropped)
	}
	for i, d := range res.Dropped {
		if d.Note != wantNotes[i] {
			t.Errorf("Dropped[%d].Note = %q, want %q", i, d.Note, wantNotes[i])
		}
	}
	// The tiny image passes unchanged; the big ones share what is left
	// and use most of it.
	if !bytes.Equal(res.Items[3].Data, tiny) {
		t.Error("tiny image was re-encoded")
	}
	if res.Size() < budget/2 {
		t.Errorf("Fit used only %d of %d bytes", res.Size(), budget)
	}
	for _, it := range res.Items[1:] {
		if it.ContentType == "image/jpeg" {
			if _, err := jpeg.Decode(bytes.NewReader(it.Data)); err != nil {
				t.Errorf("%s does not decode: %v", it.Name, err)
			}
		}
	}
}

func TestFitCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	items := []Item{{"a.jpg", "image/jpeg", testimg.JPEG(testimg.Photo(200, 150, 1), 90)}}
	if _, err := Fit(ctx, items, 100*1024, mustProfile(t, "default")); !errors.Is(err, context.Canceled) {
		t.Errorf("Fit(canceled) = %v", err)
	}
}

func TestTruncateText(t *testing.T) {
	tests := []struct {
		s    string
		max  int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello world", 5, "hello"},
		{"hello world", 8, "hello…"},
		{"ééééé", 4, "éé"},
		{"ééééé", 5, "éé"},
		{"ééééé", 9, "ééé…"},
		{"€€€", 2, ""},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		if got := TruncateText(tt.s, tt.max); got != tt.want {
			t.Errorf("TruncateText(%q, %d) = %q, want %q", tt.s, tt.max, got, tt.want)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int]string{500: "500 bytes", 2048: "2 KB", 1258291: "1.2 MB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func FuzzFitImage(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/seed*")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add(pngHeader(1<<20, 1<<20))
	p := mustProfile(f, "basic")
	p.MaxPixels = 1 << 22
	f.Fuzz(func(t *testing.T, data []byte) {
		if sniffFormat(data) == "heic" {
			return // the wasm decoder is slow to start; covered by TestHEIC
		}
		start := time.Now()
		im, err := FitImage(context.Background(), data, 16*1024, p)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("FitImage took %v (format %q)", d, sniffFormat(data))
		}
		if err != nil {
			var ie *ImageError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T %v is not *ImageError", err, err)
			}
			return
		}
		if len(im.Data) > 16*1024 {
			t.Fatalf("output %d bytes over budget", len(im.Data))
		}
		if im.Width > 640 && im.Height > 640 {
			t.Fatalf("output %dx%d over profile", im.Width, im.Height)
		}
	})
}

// TestSeeds adapts every small file we made in testdata/ (also the fuzz
// seeds): each must decode and come out in an allowed type.
func TestSeeds(t *testing.T) {
	t.Parallel()
	seeds, err := filepath.Glob("testdata/seed*")
	if err != nil || len(seeds) == 0 {
		t.Fatal("no seeds", err)
	}
	p := mustProfile(t, "basic")
	want := map[string]string{
		"seed-alpha.png": "image/png", "seed-alpha.webp": "image/png", "seed-anim.gif": "image/gif",
		"seed.webp": "image/jpeg", "seed.bmp": "image/jpeg", "seed.tiff": "image/jpeg", "seed.heic": "image/jpeg",
		"seed-tiny.jpg": "image/jpeg", "seed-exif6.jpg": "image/jpeg", "seed-progressive.jpg": "image/jpeg",
	}
	for _, s := range seeds {
		name := filepath.Base(s)
		if strings.HasSuffix(name, ".heic") && (testing.Short() || (raceEnabled && os.Getenv("ADAPT_TEST_HEIC") == "")) {
			continue
		}
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		im, err := FitImage(context.Background(), data, 8*1024, p)
		if err != nil {
			t.Errorf("%s: FitImage = %v", name, err)
			continue
		}
		if w, ok := want[name]; ok && im.ContentType != w {
			t.Errorf("%s: ContentType = %s, want %s", name, im.ContentType, w)
		}
		if !p.Allows(im.ContentType) {
			t.Errorf("%s: output type %s not allowed", name, im.ContentType)
		}
		decodeOut(t, im)
		if name == "seed-exif6.jpg" && (im.Width != 16 || im.Height != 24) {
			t.Errorf("%s: %dx%d, want 16x24 (rotated)", name, im.Width, im.Height)
		}
	}
}
