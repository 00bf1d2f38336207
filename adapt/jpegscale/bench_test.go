package jpegscale

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mmsrelay/mmsrelay/adapt/internal/jpegenc"
	"github.com/mmsrelay/mmsrelay/adapt/internal/testimg"
)

func photo12MP(b *testing.B) []byte {
	b.Helper()
	p, err := testimg.CachedPhotoJPEG(4000, 3000)
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkDecode12MP compares image/jpeg's full decode with ours at each
// scale on a 4000×3000 quality-90 photo.
func BenchmarkDecode12MP(b *testing.B) {
	data := photo12MP(b)
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		loop(b, func() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		})
	})
	// The same photo re-encoded with restart markers (as many cameras
	// write), which lets the entropy decoding use both cores.
	full, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	dri, err := jpegenc.Encode(full.(*image.YCbCr), 90, 2)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("scale2-restart-markers", func(b *testing.B) {
		loop(b, func() {
			if _, err := Decode(dri, Options{Scale: 2}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("scale2-restart-markers-sequential", func(b *testing.B) {
		loop(b, func() {
			if _, err := Decode(dri, Options{Scale: 2, Sequential: true}); err != nil {
				b.Fatal(err)
			}
		})
	})
	for _, s := range []int{2, 4, 8} {
		b.Run("scale"+string(rune('0'+s)), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			loop(b, func() {
				if _, err := Decode(data, Options{Scale: s}); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// loop runs f b.N times and also reports CPU milliseconds per op, steadier
// than wall time on a shared machine.
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
