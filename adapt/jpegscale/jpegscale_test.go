package jpegscale

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mmsrelay/mmsrelay/adapt/internal/jpegenc"
	"github.com/mmsrelay/mmsrelay/adapt/internal/testimg"
)

// boxDown reduces img by an integer factor with a box filter, the reference
// that a reduced-scale IDCT approximates. Partial boxes at the edges average
// the pixels they have.
func boxDown(img image.Image, s int) *image.RGBA {
	b := img.Bounds()
	w, h := (b.Dx()+s-1)/s, (b.Dy()+s-1)/s
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var r, g, bl, n uint32
			for yy := y * s; yy < min((y+1)*s, b.Dy()); yy++ {
				for xx := x * s; xx < min((x+1)*s, b.Dx()); xx++ {
					cr, cg, cb, _ := img.At(b.Min.X+xx, b.Min.Y+yy).RGBA()
					r, g, bl, n = r+cr>>8, g+cg>>8, bl+cb>>8, n+1
				}
			}
			out.SetRGBA(x, y, color.RGBA{uint8((r + n/2) / n), uint8((g + n/2) / n), uint8((bl + n/2) / n), 255})
		}
	}
	return out
}

type plane struct {
	pix    []byte
	stride int
	w, h   int
}

// planePairs returns (ours, reference) plane pairs for Y, Cb and Cr.
func planePairs(got, ref *image.YCbCr) [3][2]plane {
	cw, ch := chromaSize(ref)
	gcw, gch := chromaSize(got)
	return [3][2]plane{
		{{got.Y, got.YStride, got.Rect.Dx(), got.Rect.Dy()}, {ref.Y, ref.YStride, ref.Rect.Dx(), ref.Rect.Dy()}},
		{{got.Cb, got.CStride, gcw, gch}, {ref.Cb, ref.CStride, cw, ch}},
		{{got.Cr, got.CStride, gcw, gch}, {ref.Cr, ref.CStride, cw, ch}},
	}
}

func chromaSize(m *image.YCbCr) (int, int) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	}
	return w, h
}

// planePSNR compares our reduced plane with the reference plane box-filtered
// by s, over the area both cover.
func planePSNR(got, ref plane, s int) float64 {
	var se float64
	n := 0
	for y := 0; y < got.h && y*s < ref.h; y++ {
		for x := 0; x < got.w && x*s < ref.w; x++ {
			sum, cnt := 0, 0
			for yy := y * s; yy < min((y+1)*s, ref.h); yy++ {
				for xx := x * s; xx < min((x+1)*s, ref.w); xx++ {
					sum += int(ref.pix[yy*ref.stride+xx])
					cnt++
				}
			}
			d := float64(got.pix[y*got.stride+x]) - float64(sum)/float64(cnt)
			se += d * d
			n++
		}
	}
	if se == 0 {
		return 99
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

// psnr compares two images of the same size over RGB.
func psnr(t *testing.T, a, b image.Image) float64 {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes differ: %v vs %v", a.Bounds(), b.Bounds())
	}
	var se float64
	var n int
	ab, bb := a.Bounds(), b.Bounds()
	for y := 0; y < ab.Dy(); y++ {
		for x := 0; x < ab.Dx(); x++ {
			r1, g1, b1, _ := a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(bb.Min.X+x, bb.Min.Y+y).RGBA()
			for _, d := range []float64{float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8)} {
				se += d * d
				n++
			}
		}
	}
	if se == 0 {
		return 99
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

func TestDecodeMatchesStdlib(t *testing.T) {
	photo := testimg.Photo(333, 250, 7) // odd sizes: partial MCUs
	cases := []struct {
		name string
		img  image.Image
	}{
		{"ycbcr420", photo},
		{"gray", testimg.Gray(photo)},
	}
	for _, tc := range cases {
		data := testimg.JPEG(tc.img, 90)
		ref, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []int{1, 2, 4, 8} {
			got, err := Decode(data, Options{Scale: s})
			if err != nil {
				t.Fatalf("%s: Decode(scale %d) = %v", tc.name, s, err)
			}
			wantW, wantH := (333+s-1)/s, (250+s-1)/s
			if g := got.Bounds().Size(); g != image.Pt(wantW, wantH) {
				t.Fatalf("%s: Decode(scale %d) size = %v, want %dx%d", tc.name, s, g, wantW, wantH)
			}
			switch got.(type) {
			case *image.YCbCr:
				if tc.name == "gray" {
					t.Errorf("gray decoded as %T", got)
				}
			case *image.Gray:
				if tc.name != "gray" {
					t.Errorf("color decoded as %T", got)
				}
			}
			if yc, ok := got.(*image.YCbCr); ok {
				ry := ref.(*image.YCbCr)
				for i, pl := range planePairs(yc, ry) {
					if pp := planePSNR(pl[0], pl[1], s); pp < 33 {
						t.Errorf("%s scale %d plane %d: PSNR %.1f, want ≥ 33", tc.name, s, i, pp)
					}
				}
				continue
			}
			p := psnr(t, got, boxDown(ref, s))
			min := 30.0
			if s == 1 {
				min = 40
			}
			t.Logf("%s scale %d: PSNR %.1f dB", tc.name, s, p)
			if p < min {
				t.Errorf("%s scale %d: PSNR vs stdlib+box = %.1f dB, want ≥ %.0f", tc.name, s, p, min)
			}
		}
	}
}

func TestProbe(t *testing.T) {
	data := testimg.JPEG(testimg.Photo(64, 48, 1), 80)
	info, err := Probe(data)
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 64 || info.Height != 48 || info.Components != 3 || !info.Supported || info.Progressive {
		t.Errorf("Probe = %+v", info)
	}
	if _, err := Probe([]byte("not a jpeg")); err == nil {
		t.Error("Probe(garbage) = nil error")
	}
}

func TestScaleFor(t *testing.T) {
	tests := []struct{ w, h, tw, th, want int }{
		{4000, 3000, 1600, 1200, 2},
		{4000, 3000, 640, 480, 4},
		{4000, 3000, 300, 200, 8},
		{4000, 3000, 3000, 3000, 1},
		{1000, 800, 1600, 1200, 1},
	}
	for _, tt := range tests {
		if got := ScaleFor(tt.w, tt.h, tt.tw, tt.th); got != tt.want {
			t.Errorf("ScaleFor(%d,%d,%d,%d) = %d, want %d", tt.w, tt.h, tt.tw, tt.th, got, tt.want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	data := testimg.JPEG(testimg.Photo(64, 48, 1), 80)
	// Patch the SOF0 height and width to 60000×60000.
	i := bytes.Index(data, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	data = bytes.Clone(data)
	copy(data[i+5:], []byte{0xEA, 0x60, 0xEA, 0x60})
	_, err := Decode(data, Options{Scale: 2})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Decode(60000²) = %v, want ErrTooLarge", err)
	}
}

func TestUnsupportedProgressive(t *testing.T) {
	data := testimg.JPEG(testimg.Photo(64, 48, 1), 80)
	i := bytes.Index(data, []byte{0xFF, 0xC0})
	data = bytes.Clone(data)
	data[i+1] = 0xC2
	if _, err := Decode(data, Options{Scale: 2}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Decode(SOF2) = %v, want ErrUnsupported", err)
	}
	info, err := Probe(data)
	if err != nil || !info.Progressive || info.Supported {
		t.Errorf("Probe(SOF2) = %+v, %v", info, err)
	}
}

func TestTruncated(t *testing.T) {
	data := testimg.JPEG(testimg.Photo(200, 150, 1), 80)
	for _, n := range []int{2, 20, 200, len(data) / 2, len(data) - 2} {
		img, err := Decode(data[:n], Options{Scale: 2})
		if err == nil && img == nil {
			t.Errorf("Decode(truncated %d) = nil, nil", n)
		}
	}
}

// TestVipsVariants decodes files written by vips with restart markers and
// 4:4:4 chroma, when the vips tool is installed.
func TestVipsVariants(t *testing.T) {
	vips, err := exec.LookPath("vips")
	if err != nil {
		t.Skip("vips not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.png")
	photo := testimg.Photo(301, 203, 3)
	f, _ := os.Create(src)
	if err := pngEncode(f, photo); err != nil {
		t.Fatal(err)
	}
	f.Close()
	variants := map[string][]string{
		"restart": {"[Q=85,restart_interval=3]"},
		"444":     {"[Q=85,subsample_mode=off]"},
	}
	for name, opt := range variants {
		out := filepath.Join(dir, name+".jpg")
		if b, err := exec.Command(vips, "copy", src, out+opt[0]).CombinedOutput(); err != nil {
			t.Logf("vips %s: %v %s", name, err, b)
			continue
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []int{2, 4, 8} {
			got, err := Decode(data, Options{Scale: s})
			if err != nil {
				t.Fatalf("%s: Decode(scale %d) = %v", name, s, err)
			}
			for i, pl := range planePairs(got.(*image.YCbCr), ref.(*image.YCbCr)) {
				if pp := planePSNR(pl[0], pl[1], s); pp < 33 {
					t.Errorf("%s scale %d plane %d: PSNR %.1f, want ≥ 33", name, s, i, pp)
				}
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(testimg.JPEG(testimg.Photo(40, 24, 1), 75))
	f.Add(testimg.JPEG(testimg.Gray(testimg.Photo(17, 9, 2)), 50))
	if seeds, err := filepath.Glob("../testdata/*.jpg"); err == nil {
		for _, p := range seeds {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range []int{2, 8} {
			img, err := Decode(data, Options{Scale: s, MaxPixels: 1 << 20})
			if err != nil {
				continue
			}
			b := img.Bounds()
			_ = img.At(b.Max.X-1, b.Max.Y-1) // every pixel must be addressable
		}
		Probe(data)
	})
}

// TestRestartSplit checks that decoding a file with restart markers on two
// goroutines gives exactly the sequential result.
func TestRestartSplit(t *testing.T) {
	src := testimg.Photo(517, 389, 11)
	ref, err := jpeg.Decode(bytes.NewReader(testimg.JPEG(src, 95)))
	if err != nil {
		t.Fatal(err)
	}
	data, err := jpegenc.Encode(ref.(*image.YCbCr), 90, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte{0xFF, 0xDD}) {
		t.Fatal("no DRI in test file")
	}
	for _, s := range []int{2, 4, 8} {
		seq, err := Decode(data, Options{Scale: s, Sequential: true})
		if err != nil {
			t.Fatal(err)
		}
		par, err := Decode(data, Options{Scale: s})
		if err != nil {
			t.Fatal(err)
		}
		a, b := seq.(*image.YCbCr), par.(*image.YCbCr)
		if !bytes.Equal(a.Y, b.Y) || !bytes.Equal(a.Cb, b.Cb) || !bytes.Equal(a.Cr, b.Cr) {
			t.Errorf("scale %d: split decode differs from sequential", s)
		}
		full, _ := jpeg.Decode(bytes.NewReader(data))
		for i, pl := range planePairs(b, full.(*image.YCbCr)) {
			if pp := planePSNR(pl[0], pl[1], s); pp < 33 {
				t.Errorf("scale %d plane %d: PSNR %.1f", s, i, pp)
			}
		}
	}
	// A missing restart marker makes the split path fall back.
	i := bytes.Index(data, []byte{0xFF, 0xD3})
	broken := append(bytes.Clone(data[:i]), data[i+2:]...)
	if _, err := Decode(broken, Options{Scale: 2}); err != nil {
		t.Logf("broken restart: %v", err)
	}
}
