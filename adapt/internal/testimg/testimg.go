// Package testimg makes deterministic synthetic images for the tests and
// benchmarks of adapt and its subpackages, so that no large binaries need to
// be committed.
package testimg

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
)

// Photo returns a w×h photo-like image: smooth colour gradients, a few
// soft-edged discs, fine texture and sensor-like noise, so that JPEG sizes and
// decode costs resemble a camera picture's. It is deterministic in seed.
func Photo(w, h int, seed uint64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	type disc struct {
		x, y, r float64
		c       [3]float64
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	discs := make([]disc, 12)
	for i := range discs {
		discs[i] = disc{rng.Float64() * float64(w), rng.Float64() * float64(h),
			(0.05 + 0.2*rng.Float64()) * float64(min(w, h)),
			[3]float64{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}}
	}
	var wg sync.WaitGroup
	stripes := 4
	for s := 0; s < stripes; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed+uint64(s)+1, 17))
			for y := s * h / stripes; y < (s+1)*h/stripes; y++ {
				fy := float64(y) / float64(h)
				for x := 0; x < w; x++ {
					fx := float64(x) / float64(w)
					c := [3]float64{60 + 150*fx, 80 + 120*fy, 200 - 120*fx*fy}
					for _, d := range discs {
						dx, dy := float64(x)-d.x, float64(y)-d.y
						if math.Abs(dx) > 1.1*d.r || math.Abs(dy) > 1.1*d.r {
							continue
						}
						dist := math.Sqrt(dx*dx+dy*dy) / d.r
						if dist < 1.1 {
							a := math.Min(1, math.Max(0, (1.1-dist)*10))
							for k := range c {
								c[k] = c[k]*(1-a) + d.c[k]*a
							}
						}
					}
					tex := 12 * math.Sin(float64(x)*0.21+3*math.Sin(float64(y)*0.05)) * math.Cos(float64(y)*0.17)
					n := r.NormFloat64() * 4
					o := img.PixOffset(x, y)
					for k := 0; k < 3; k++ {
						img.Pix[o+k] = clamp(c[k] + tex + n)
					}
					img.Pix[o+3] = 255
				}
			}
		}(s)
	}
	wg.Wait()
	return img
}

func clamp(v float64) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v + 0.5)
}

// JPEG encodes img with image/jpeg at quality q.
func JPEG(img image.Image, q int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Gray converts img to an *image.Gray.
func Gray(img image.Image) *image.Gray {
	g := image.NewGray(img.Bounds())
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			g.Set(x, y, color.GrayModel.Convert(img.At(x, y)))
		}
	}
	return g
}

var cacheMu sync.Mutex

// CachedPhotoJPEG returns the path of a w×h Photo encoded at quality 90,
// cached under the user cache (or temp) directory so that benchmarks and
// external tools can share it without regenerating it each run.
func CachedPhotoJPEG(w, h int) (string, error) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "mmsrelay-adapt-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, fmt.Sprintf("photo-%dx%d-q90-v1.jpg", w, h))
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	data := JPEG(Photo(w, h, 1), 90)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}
