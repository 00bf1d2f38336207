// Package jpegenc encodes 4:2:0 YCbCr images as baseline JPEG, in parallel.
//
// Design note. image/jpeg converts every pixel back through YCbCrAt and
// encodes on one goroutine. Our resized images are already 4:2:0 planes, so
// this encoder reads the planes directly, splits the image into horizontal
// stripes of whole MCU rows, and entropy-codes the stripes concurrently: the
// stripes are joined by restart markers (ITU-T T.81 B.2.4.4, F.1.2.3), which
// reset the DC predictors and byte-align the stream, so each stripe can be
// coded independently. The quantization and Huffman tables are the ones
// image/jpeg writes for the same quality (taken from a tiny image it encodes
// once per quality), so a quality number means the same thing for both.
package jpegenc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/bits"
	"runtime"
	"sync"
)

// tables are the DQT and DHT segments and derived encoding tables for one
// quality.
type tables struct {
	dqt, dht []byte      // whole segments, marker included
	quant    [2][64]int  // zig-zag order
	huff     [4]huffCode // DC luma, AC luma, DC chroma, AC chroma
	div      [2][64]float32
}

type huffCode struct {
	code [256]uint16
	size [256]uint8
}

// tablesFor returns the tables image/jpeg uses at quality q. It costs one
// 16×16 encode (tens of microseconds), so it is not cached.
func tablesFor(q int) (*tables, error) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewYCbCr(image.Rect(0, 0, 16, 16), image.YCbCrSubsampleRatio420), &jpeg.Options{Quality: q}); err != nil {
		return nil, err
	}
	t := &tables{}
	data := b.Bytes()
	for p := 2; p+4 <= len(data); {
		if data[p] != 0xFF {
			return nil, errors.New("jpegenc: unexpected reference stream")
		}
		m := data[p+1]
		n := int(data[p+2])<<8 | int(data[p+3])
		if p+2+n > len(data) {
			return nil, errors.New("jpegenc: short reference stream")
		}
		seg := data[p : p+2+n]
		switch m {
		case 0xDB:
			t.dqt = append(t.dqt, seg...)
			for body := seg[4:]; len(body) >= 65; body = body[65:] {
				id := body[0] & 15
				if body[0]>>4 != 0 || id > 1 {
					return nil, errors.New("jpegenc: unexpected DQT")
				}
				for k := 0; k < 64; k++ {
					t.quant[id][k] = int(body[1+k])
				}
			}
		case 0xC4:
			t.dht = append(t.dht, seg...)
			for body := seg[4:]; len(body) >= 17; {
				class, id := body[0]>>4, body[0]&15
				var counts [17]int
				total := 0
				for l := 1; l <= 16; l++ {
					counts[l] = int(body[l])
					total += counts[l]
				}
				if len(body) < 17+total || id > 1 || class > 1 {
					return nil, errors.New("jpegenc: unexpected DHT")
				}
				t.huff[int(id)*2+int(class)] = buildCodes(counts, body[17:17+total])
				body = body[17+total:]
			}
		case 0xDA:
			p = len(data)
			continue
		}
		p += 2 + n
	}
	if len(t.dqt) == 0 || len(t.dht) == 0 {
		return nil, errors.New("jpegenc: no tables in reference stream")
	}
	// Divisors for the AAN forward DCT, whose outputs are scaled by
	// 8·a(u)·a(v), a(0) = 1, a(k) = √2·cos(kπ/16).
	var aan [8]float64
	aan[0] = 1
	for k := 1; k < 8; k++ {
		aan[k] = math.Sqrt2 * math.Cos(float64(k)*math.Pi/16)
	}
	for c := 0; c < 2; c++ {
		for k := 0; k < 64; k++ {
			n := unzig[k]
			t.div[c][n] = float32(1 / (float64(t.quant[c][k]) * aan[n/8] * aan[n%8] * 8))
		}
	}
	return t, nil
}

// buildCodes assigns canonical codes (T.81 C.2).
func buildCodes(counts [17]int, vals []byte) huffCode {
	var h huffCode
	code, k := 0, 0
	for l := 1; l <= 16; l++ {
		for i := 0; i < counts[l]; i++ {
			h.code[vals[k]] = uint16(code)
			h.size[vals[k]] = uint8(l)
			code++
			k++
		}
		code <<= 1
	}
	return h
}

// unzig maps a zig-zag index to the natural index (T.81 Figure A.6).
var unzig = [64]int{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// Encode writes m, which must be 4:2:0, as a baseline JPEG at quality q
// (1–100, as image/jpeg) and returns the bytes, using up to workers
// goroutines (0 means GOMAXPROCS).
func Encode(m *image.YCbCr, q, workers int) ([]byte, error) {
	if m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return nil, fmt.Errorf("jpegenc: subsampling %v, want 4:2:0", m.SubsampleRatio)
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	if w <= 0 || h <= 0 || w > 65535 || h > 65535 {
		return nil, fmt.Errorf("jpegenc: bad size %dx%d", w, h)
	}
	q = min(max(q, 1), 100)
	t, err := tablesFor(q)
	if err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	mcusX, mcusY := (w+15)/16, (h+15)/16
	// Stripes of whole MCU rows, a few per worker for balance.
	nStripes := min(mcusY, max(1, workers*4))
	rowsPer := (mcusY + nStripes - 1) / nStripes
	nStripes = (mcusY + rowsPer - 1) / rowsPer
	out := make([][]byte, nStripes)
	var wg sync.WaitGroup
	next := make(chan int, nStripes)
	for i := 0; i < nStripes; i++ {
		next <- i
	}
	close(next)
	var panicErr error
	var panicMu sync.Mutex
	for k := 0; k < min(workers, nStripes); k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					panicMu.Lock()
					panicErr = fmt.Errorf("jpegenc: panic: %v", p)
					panicMu.Unlock()
				}
			}()
			e := stripeEncoder{t: t, m: m, w: w, h: h}
			for i := range next {
				y0, y1 := i*rowsPer, min((i+1)*rowsPer, mcusY)
				out[i] = e.encode(y0, y1, mcusX, make([]byte, 0, w*(y1-y0)*16/4))
			}
		}()
	}
	wg.Wait()
	if panicErr != nil {
		return nil, panicErr
	}
	// Assemble: headers, stripes joined by RSTn, EOI.
	size := 1024 + len(t.dqt) + len(t.dht)
	for _, s := range out {
		size += len(s) + 2
	}
	b := make([]byte, 0, size)
	b = append(b, 0xFF, 0xD8)
	b = append(b, t.dqt...)
	b = append(b, 0xFF, 0xC0, 0, 17, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 3,
		1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
	b = append(b, t.dht...)
	ri := rowsPer * mcusX
	if nStripes > 1 {
		if ri > 65535 {
			return nil, errors.New("jpegenc: restart interval too long")
		}
		b = append(b, 0xFF, 0xDD, 0, 4, byte(ri>>8), byte(ri))
	}
	b = append(b, 0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0)
	for i, s := range out {
		b = append(b, s...)
		if i < len(out)-1 {
			b = append(b, 0xFF, byte(0xD0+i%8))
		}
	}
	return append(b, 0xFF, 0xD9), nil
}

type stripeEncoder struct {
	t    *tables
	m    *image.YCbCr
	w, h int
	// bit writer
	acc   uint64
	nbits uint
	out   []byte
	pred  [3]int
}

func (e *stripeEncoder) emit(code uint32, size uint) {
	e.acc |= uint64(code) << (64 - size - e.nbits)
	e.nbits += size
	for e.nbits >= 8 {
		c := byte(e.acc >> 56)
		e.out = append(e.out, c)
		if c == 0xFF {
			e.out = append(e.out, 0)
		}
		e.acc <<= 8
		e.nbits -= 8
	}
}

func (e *stripeEncoder) flush() {
	if e.nbits > 0 {
		e.emit(1<<(8-e.nbits)-1, 8-e.nbits) // pad with 1-bits (F.1.2.3)
	}
}

func (e *stripeEncoder) encode(y0, y1, mcusX int, buf []byte) []byte {
	e.out, e.acc, e.nbits, e.pred = buf, 0, 0, [3]int{}
	var blk [64]float32
	m := e.m
	cw, ch := (e.w+1)/2, (e.h+1)/2
	for my := y0; my < y1; my++ {
		for mx := 0; mx < mcusX; mx++ {
			for by := 0; by < 2; by++ {
				for bx := 0; bx < 2; bx++ {
					load(&blk, m.Y, m.YStride, mx*16+bx*8, my*16+by*8, e.w, e.h)
					e.block(&blk, 0)
				}
			}
			load(&blk, m.Cb, m.CStride, mx*8, my*8, cw, ch)
			e.block(&blk, 1)
			load(&blk, m.Cr, m.CStride, mx*8, my*8, cw, ch)
			e.block(&blk, 2)
		}
	}
	e.flush()
	return e.out
}

// load copies an 8×8 block at (x0, y0), replicating edge pixels, minus 128.
func load(blk *[64]float32, pix []byte, stride, x0, y0, w, h int) {
	for y := 0; y < 8; y++ {
		sy := min(y0+y, h-1)
		row := pix[sy*stride : sy*stride+w]
		if x0+8 <= w {
			r := row[x0 : x0+8]
			for x := 0; x < 8; x++ {
				blk[y*8+x] = float32(r[x]) - 128
			}
			continue
		}
		for x := 0; x < 8; x++ {
			blk[y*8+x] = float32(row[min(x0+x, w-1)]) - 128
		}
	}
}

// block transforms, quantizes and entropy-codes one block (T.81 F.1.2).
func (e *stripeEncoder) block(blk *[64]float32, comp int) {
	fdct(blk)
	tc := min(comp, 1)
	div := &e.t.div[tc]
	dc, ac := &e.t.huff[tc*2], &e.t.huff[tc*2+1]
	// Quantize in zig-zag order, branch-free rounding (|v| < 16384), and
	// note the non-zero AC positions in a bit mask.
	var zz [64]int32
	var nz uint64
	for k := 0; k < 64; k++ {
		n := unzig[k]
		v := int32(blk[n]*div[n]+16384.5) - 16384
		zz[k] = v
		if v != 0 {
			nz |= 1 << k
		}
	}
	diff := int(zz[0]) - e.pred[comp]
	e.pred[comp] = int(zz[0])
	e.emitValue(dc, 0, diff)
	nz &^= 1
	last := 0
	for nz != 0 {
		k := bits.TrailingZeros64(nz)
		nz &= nz - 1
		run := k - last - 1
		for run > 15 {
			e.emit(uint32(ac.code[0xF0]), uint(ac.size[0xF0]))
			run -= 16
		}
		e.emitValue(ac, run, int(zz[k]))
		last = k
	}
	if last < 63 {
		e.emit(uint32(ac.code[0x00]), uint(ac.size[0x00]))
	}
}

// emitValue codes (run, size) with h, then the value's size low bits
// (negative values as v-1, F.1.2.1).
func (e *stripeEncoder) emitValue(h *huffCode, run, v int) {
	a := v
	if a < 0 {
		a = -a
		v--
	}
	s := uint(bits.Len(uint(a)))
	if s > 15 {
		s, v = 15, 0 // cannot happen for 8-bit input; keep the stream valid
	}
	sym := byte(run<<4) | byte(s)
	e.emit(uint32(h.code[sym]), uint(h.size[sym]))
	if s > 0 {
		e.emit(uint32(v)&(1<<s-1), s)
	}
}

// fdct is the Arai–Agui–Nakajima forward DCT on rows then columns; outputs
// are scaled by 8·a(u)·a(v) (see tablesFor).
func fdct(d *[64]float32) {
	for r := 0; r < 64; r += 8 {
		fdct8(d[r:r+8:r+8], 1)
	}
	for c := 0; c < 8; c++ {
		fdct8(d[c:], 8)
	}
}

// fdct8 transforms 8 values at stride s in place.
func fdct8(p []float32, s int) {
	_ = p[7*s]
	t0 := p[0] + p[7*s]
	t7 := p[0] - p[7*s]
	t1 := p[s] + p[6*s]
	t6 := p[s] - p[6*s]
	t2 := p[2*s] + p[5*s]
	t5 := p[2*s] - p[5*s]
	t3 := p[3*s] + p[4*s]
	t4 := p[3*s] - p[4*s]
	// Even part.
	t10 := t0 + t3
	t13 := t0 - t3
	t11 := t1 + t2
	t12 := t1 - t2
	p[0] = t10 + t11
	p[4*s] = t10 - t11
	z1 := (t12 + t13) * 0.707106781
	p[2*s] = t13 + z1
	p[6*s] = t13 - z1
	// Odd part.
	t10 = t4 + t5
	t11 = t5 + t6
	t12 = t6 + t7
	z5 := (t10 - t12) * 0.382683433
	z2 := 0.541196100*t10 + z5
	z4 := 1.306562965*t12 + z5
	z3 := t11 * 0.707106781
	z11 := t7 + z3
	z13 := t7 - z3
	p[5*s] = z13 + z2
	p[3*s] = z13 - z2
	p[s] = z11 + z4
	p[7*s] = z11 - z4
}
