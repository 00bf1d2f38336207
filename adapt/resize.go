package adapt

import (
	"image"
	"image/draw"
	"math"
	"sync"
)

// Resizing is separable: a horizontal pass into a temporary plane, then a
// vertical pass, each with a Catmull-Rom kernel widened by the reduction
// factor (so that downscaling averages every source pixel, as an area filter
// does), in 14-bit fixed point. Rows are split into stripes, one per CPU.

const wBits = 14

type taps struct {
	n     int     // taps per output sample
	start []int   // first source index per output sample
	w     []int32 // n weights per output sample
	w8    []int32 // if n ≤ 8: the same, padded to 8 per output sample
}

func catmullRom(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return (1.5*x-2.5)*x*x + 1
	case x < 2:
		return ((-0.5*x+2.5)*x-4)*x + 2
	}
	return 0
}

func makeTaps(sn, dn int) taps {
	scale := float64(sn) / float64(dn)
	fs := math.Max(scale, 1)
	support := 2 * fs
	n := min(int(math.Ceil(2*support))+1, sn)
	t := taps{n: n, start: make([]int, dn), w: make([]int32, dn*n)}
	fw := make([]float64, n)
	for i := 0; i < dn; i++ {
		center := (float64(i)+0.5)*scale - 0.5
		lo := max(int(math.Ceil(center-support)), 0)
		hi := min(int(math.Floor(center+support)), sn-1)
		if hi-lo+1 > n {
			hi = lo + n - 1
		}
		start := lo
		if start+n > sn {
			start = sn - n
		}
		sum := 0.0
		for k := range fw {
			fw[k] = 0
		}
		for j := lo; j <= hi; j++ {
			v := catmullRom((float64(j) - center) / fs)
			fw[j-start] = v
			sum += v
		}
		if sum == 0 {
			fw[min(max(int(center+0.5), 0), sn-1)-start] = 1
			sum = 1
		}
		// Quantize so that the weights sum to exactly 1<<wBits.
		acc := int32(0)
		big := 0
		for k := range fw {
			q := int32(math.Round(fw[k] / sum * (1 << wBits)))
			t.w[i*n+k] = q
			acc += q
			if math.Abs(fw[k]) > math.Abs(fw[big]) {
				big = k
			}
		}
		t.w[i*n+big] += 1<<wBits - acc
		t.start[i] = start
	}
	if n <= 8 {
		t.w8 = make([]int32, dn*8)
		for i := 0; i < dn; i++ {
			copy(t.w8[i*8:], t.w[i*n:i*n+n])
		}
	}
	return t
}

func clamp8(v int32) uint8 {
	v = (v + 1<<(wBits-1)) >> wBits
	if uint32(v) <= 255 {
		return uint8(v)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// plane is one 8-bit channel, or c interleaved channels.
type plane struct {
	pix    []byte
	stride int
	w, h   int
	c      int // interleaved channels, ≥ 1
}

// parallelRows runs f over [0,n) split into stripes, one per worker.
func parallelRows(n, workers int, f func(lo, hi int)) {
	if workers <= 1 || n < 64 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := 0; k < workers; k++ {
		lo, hi := n*k/workers, n*(k+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// resizePlane scales src into dst (sizes taken from both) using workers
// goroutines.
func resizePlane(dst, src plane, workers int) {
	c := src.c
	tx := makeTaps(src.w, dst.w)
	ty := makeTaps(src.h, dst.h)
	// Vertical first, into dst.h rows of src.w, so that the costlier
	// horizontal pass runs on the fewer rows.
	tmp := plane{pix: make([]byte, src.w*c*dst.h), stride: src.w * c, w: src.w, h: dst.h, c: c}
	parallelRows(dst.h, workers, func(lo, hi int) {
		n := ty.n
		rw := src.w * c
		acc := make([]int32, rw)
		for y := lo; y < hi; y++ {
			w := ty.w[y*n : y*n+n]
			first := true
			for k, wk := range w {
				if wk == 0 {
					continue
				}
				off := (ty.start[y] + k) * src.stride
				row := src.pix[off : off+rw]
				row = row[:len(acc)]
				if first {
					for i, v := range row {
						acc[i] = wk * int32(v)
					}
					first = false
					continue
				}
				for i, v := range row {
					acc[i] += wk * int32(v)
				}
			}
			if first {
				clear(acc)
			}
			drow := tmp.pix[y*tmp.stride : y*tmp.stride+rw]
			drow = drow[:len(acc)]
			for i, a := range acc {
				drow[i] = clamp8(a)
			}
		}
	})
	// Horizontal.
	parallelRows(dst.h, workers, func(lo, hi int) {
		n := tx.n
		var pad []byte
		if c == 1 && tx.w8 != nil {
			pad = make([]byte, src.w+8)
		}
		for y := lo; y < hi; y++ {
			srow := tmp.pix[y*tmp.stride : y*tmp.stride+src.w*c]
			drow := dst.pix[y*dst.stride : y*dst.stride+dst.w*c]
			if pad != nil {
				copy(pad, srow)
				hresize8(drow, pad, &tx)
				continue
			}
			if c == 1 {
				hresize1(drow, srow, &tx)
				continue
			}
			for x := 0; x < dst.w; x++ {
				w := tx.w[x*n : x*n+n]
				s0 := tx.start[x] * c
				for ch := 0; ch < c; ch++ {
					var sum int32
					s := srow[s0+ch:]
					for k, wk := range w {
						sum += wk * int32(s[k*c])
					}
					drow[x*c+ch] = clamp8(sum)
				}
			}
		}
	})
}

// hresize8 filters one single-channel row with at most 8 taps; src has 8
// bytes of padding past the row so that all 8 taps can be read.
func hresize8(drow, src []byte, tx *taps) {
	for x := range drow {
		w := tx.w8[x*8 : x*8+8 : x*8+8]
		st := tx.start[x]
		s := src[st : st+8 : st+8]
		sum := w[0]*int32(s[0]) + w[1]*int32(s[1]) + w[2]*int32(s[2]) + w[3]*int32(s[3]) +
			w[4]*int32(s[4]) + w[5]*int32(s[5]) + w[6]*int32(s[6]) + w[7]*int32(s[7])
		drow[x] = clamp8(sum)
	}
}

// hresize1 filters one single-channel row.
func hresize1(drow, srow []byte, tx *taps) {
	n := tx.n
	for x := range drow {
		w := tx.w[x*n : x*n+n]
		st := tx.start[x]
		s := srow[st : st+n]
		s = s[:len(w)]
		var sum int32
		for k, wk := range w {
			sum += wk * int32(s[k])
		}
		drow[x] = clamp8(sum)
	}
}

func chromaDims(r image.YCbCrSubsampleRatio, w, h int) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

// resizeYCbCr scales a YCbCr image of any subsampling to w×h 4:2:0, each
// plane on its own; the three planes run concurrently.
func resizeYCbCr(src *image.YCbCr, w, h, workers int) *image.YCbCr {
	dst := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	scw, sch := chromaDims(src.SubsampleRatio, sw, sh)
	dcw, dch := chromaDims(image.YCbCrSubsampleRatio420, w, h)
	yo := src.YOffset(src.Rect.Min.X, src.Rect.Min.Y)
	co := src.COffset(src.Rect.Min.X, src.Rect.Min.Y)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		resizePlane(plane{dst.Cb, dst.CStride, dcw, dch, 1}, plane{src.Cb[co:], src.CStride, scw, sch, 1}, 1)
	}()
	go func() {
		defer wg.Done()
		resizePlane(plane{dst.Cr, dst.CStride, dcw, dch, 1}, plane{src.Cr[co:], src.CStride, scw, sch, 1}, 1)
	}()
	resizePlane(plane{dst.Y, dst.YStride, w, h, 1}, plane{src.Y[yo:], src.YStride, sw, sh, 1}, workers)
	wg.Wait()
	return dst
}

// resizeGray scales a gray image.
func resizeGray(src *image.Gray, w, h, workers int) *image.Gray {
	dst := image.NewGray(image.Rect(0, 0, w, h))
	off := src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y)
	resizePlane(plane{dst.Pix, dst.Stride, w, h, 1}, plane{src.Pix[off:], src.Stride, src.Rect.Dx(), src.Rect.Dy(), 1}, workers)
	return dst
}

// toRGBA converts any image to premultiplied RGBA with origin (0,0).
func toRGBA(src image.Image) *image.RGBA {
	if m, ok := src.(*image.RGBA); ok && m.Rect.Min == (image.Point{}) {
		return m
	}
	b := src.Bounds()
	m := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(m, m.Rect, src, b.Min, draw.Src)
	return m
}

// resizeRGBA scales premultiplied RGBA (filtering premultiplied values is
// what keeps transparent pixels' colours from bleeding).
func resizeRGBA(src *image.RGBA, w, h, workers int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	resizePlane(plane{dst.Pix, dst.Stride, w, h, 4}, plane{src.Pix, src.Stride, src.Rect.Dx(), src.Rect.Dy(), 4}, workers)
	// Ringing can push a colour above its alpha; premultiplied data must
	// not have that.
	for i := 0; i+3 < len(dst.Pix); i += 4 {
		a := dst.Pix[i+3]
		dst.Pix[i] = min(dst.Pix[i], a)
		dst.Pix[i+1] = min(dst.Pix[i+1], a)
		dst.Pix[i+2] = min(dst.Pix[i+2], a)
	}
	return dst
}

// resize scales any image to w×h, keeping YCbCr and gray images in their
// own planes.
func resize(src image.Image, w, h, workers int) image.Image {
	switch m := src.(type) {
	case *image.YCbCr:
		return resizeYCbCr(m, w, h, workers)
	case *image.Gray:
		return resizeGray(m, w, h, workers)
	}
	return resizeRGBA(toRGBA(src), w, h, workers)
}

// fitDims returns the largest w×h with the aspect ratio of sw×sh that fits
// in maxW×maxH, never enlarging.
func fitDims(sw, sh, maxW, maxH int) (int, int) {
	if sw <= maxW && sh <= maxH {
		return sw, sh
	}
	r := math.Min(float64(maxW)/float64(sw), float64(maxH)/float64(sh))
	w := max(1, int(math.Round(float64(sw)*r)))
	h := max(1, int(math.Round(float64(sh)*r)))
	return min(w, maxW), min(h, maxH)
}
