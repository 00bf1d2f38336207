package jpegenc

import (
	"bytes"
	"image"
	"image/draw"
	"image/jpeg"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/mmsrelay/mmsrelay/adapt/internal/testimg"
)

func toYCbCr(m image.Image) *image.YCbCr {
	b := m.Bounds()
	y := image.NewYCbCr(b, image.YCbCrSubsampleRatio420)
	// Round-trip through image/jpeg at 100 to get 4:2:0 planes cheaply.
	var buf bytes.Buffer
	rgba := image.NewRGBA(b)
	draw.Draw(rgba, b, m, b.Min, draw.Src)
	jpeg.Encode(&buf, rgba, &jpeg.Options{Quality: 100})
	d, _ := jpeg.Decode(&buf)
	if yc, ok := d.(*image.YCbCr); ok {
		return yc
	}
	return y
}

func psnr(a, b image.Image) float64 {
	var se float64
	n := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			for _, d := range [3]float64{float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8)} {
				se += d * d
				n++
			}
		}
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

func TestFDCT(t *testing.T) {
	var blk, orig [64]float32
	for i := range blk {
		blk[i] = float32((i*37)%255) - 128
	}
	orig = blk
	fdct(&blk)
	aan := func(k int) float64 {
		if k == 0 {
			return 1
		}
		return math.Sqrt2 * math.Cos(float64(k)*math.Pi/16)
	}
	for u := 0; u < 8; u++ {
		for v := 0; v < 8; v++ {
			var s float64
			for y := 0; y < 8; y++ {
				for x := 0; x < 8; x++ {
					s += float64(orig[y*8+x]) * math.Cos(float64(2*x+1)*float64(v)*math.Pi/16) * math.Cos(float64(2*y+1)*float64(u)*math.Pi/16)
				}
			}
			cu, cv := 1.0, 1.0
			if u == 0 {
				cu = 1 / math.Sqrt2
			}
			if v == 0 {
				cv = 1 / math.Sqrt2
			}
			want := s * cu * cv / 4
			got := float64(blk[u*8+v]) / (8 * aan(u) * aan(v))
			if math.Abs(got-want) > 0.01 {
				t.Fatalf("F(%d,%d) = %.3f, want %.3f", u, v, got, want)
			}
		}
	}
}

func TestEncodeMatchesStdlib(t *testing.T) {
	for _, sz := range []image.Point{{333, 250}, {16, 16}, {7, 5}, {640, 480}} {
		src := toYCbCr(testimg.Photo(sz.X, sz.Y, 3))
		for _, q := range []int{30, 85} {
			data, err := Encode(src, q, 2)
			if err != nil {
				t.Fatal(err)
			}
			got, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%v q%d: decode: %v", sz, q, err)
			}
			if got.Bounds() != src.Bounds() {
				t.Fatalf("%v: bounds %v", sz, got.Bounds())
			}
			var ref bytes.Buffer
			jpeg.Encode(&ref, src, &jpeg.Options{Quality: q})
			refImg, _ := jpeg.Decode(bytes.NewReader(ref.Bytes()))
			pg, pr := psnr(src, got), psnr(src, refImg)
			t.Logf("%v q%d: ours %d bytes %.1f dB, stdlib %d bytes %.1f dB", sz, q, len(data), pg, ref.Len(), pr)
			if pg < pr-0.5 {
				t.Errorf("%v q%d: PSNR %.1f, stdlib %.1f", sz, q, pg, pr)
			}
			if len(data) > ref.Len()*11/10+200 {
				t.Errorf("%v q%d: %d bytes, stdlib %d", sz, q, len(data), ref.Len())
			}
		}
	}
}

func BenchmarkEncode1600x1200(b *testing.B) {
	src := toYCbCr(testimg.Photo(1600, 1200, 1))
	b.Run("stdlib", func(b *testing.B) {
		loop(b, func() {
			var buf bytes.Buffer
			jpeg.Encode(&buf, src, &jpeg.Options{Quality: 85})
		})
	})
	for _, w := range []int{1, 2} {
		b.Run("ours-"+string(rune('0'+w)), func(b *testing.B) {
			loop(b, func() { Encode(src, 85, w) })
		})
	}
}

func loop(b *testing.B, f func()) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0, n := cpu(), 0
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64(cpu()-c0)/float64(time.Millisecond)/float64(max(n, 1)), "cpu-ms/op")
}
