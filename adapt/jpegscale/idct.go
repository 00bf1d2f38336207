package jpegscale

import "math"

// idctTable holds the n-point reduced IDCT matrix
//
//	m[k][u] = C(u)/2 · cos((2k+1)uπ/(2n)),  C(0) = 1/√2,
//
// in fixed point with idctBits fractional bits (see the package comment for
// why this equals the 8-point IDCT sampled at group centres).
type idctTable struct {
	n int
	m [8][8]int32
}

const idctBits = 13

func newIDCTTable(n int) idctTable {
	t := idctTable{n: n}
	for k := 0; k < n; k++ {
		for u := 0; u < n; u++ {
			c := 1.0
			if u == 0 {
				c = 1 / math.Sqrt2
			}
			v := c / 2 * math.Cos(float64(2*k+1)*float64(u)*math.Pi/float64(2*n))
			t.m[k][u] = int32(math.Round(v * (1 << idctBits)))
		}
	}
	return t
}

func clampByte(v int32) byte {
	if uint32(v) <= 255 {
		return byte(v)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// transform computes the n×n output block from coefficients in natural n×n
// order, adds the level shift of 128 (T.81 A.3.1) and stores it into dst
// with the given stride.
func (t *idctTable) transform(coef []int32, dst []byte, stride int) {
	n := t.n
	// Coefficients are clamped so that the fixed-point products cannot
	// overflow on corrupt input; valid 8-bit data stays within ±2^14.
	const lim = 1 << 15
	dcOnly := true
	for i := 1; i < n*n; i++ {
		if coef[i] != 0 {
			dcOnly = false
			break
		}
	}
	if dcOnly {
		dc := min(max(coef[0], -lim), lim)
		// f = F(0,0)/8, rounded.
		v := clampByte((dc+4)>>3 + 128)
		for y := 0; y < n; y++ {
			row := dst[y*stride : y*stride+n]
			for x := range row {
				row[x] = v
			}
		}
		return
	}
	switch n {
	case 2:
		t.transform2(coef, dst, stride)
		return
	case 4:
		t.transform4(coef, dst, stride)
		return
	}
	// Generic path (n = 8, used for scale 1).
	var tmp [64]int32
	// Rows: tmp[v][x] = Σ_u F[v][u]·m[x][u], keeping idctBits-3 extra bits.
	for v := 0; v < n; v++ {
		for x := 0; x < n; x++ {
			var s int64
			for u := 0; u < n; u++ {
				s += int64(min(max(coef[v*n+u], -lim), lim)) * int64(t.m[x][u])
			}
			tmp[v*8+x] = int32(s >> 3)
		}
	}
	const shift = 2*idctBits - 3
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			var s int64
			for v := 0; v < n; v++ {
				s += int64(tmp[v*8+x]) * int64(t.m[y][v])
			}
			dst[y*stride+x] = clampByte(int32((s+1<<(shift-1))>>shift) + 128)
		}
	}
}

// transform4 is the 4×4 case, unrolled, in 64-bit arithmetic.
func (t *idctTable) transform4(coef []int32, dst []byte, stride int) {
	const lim = 1 << 15
	var m [4][4]int64
	for k := 0; k < 4; k++ {
		for u := 0; u < 4; u++ {
			m[k][u] = int64(t.m[k][u])
		}
	}
	var tmp [16]int64
	for v := 0; v < 4; v++ {
		f0 := int64(min(max(coef[v*4], -lim), lim))
		f1 := int64(min(max(coef[v*4+1], -lim), lim))
		f2 := int64(min(max(coef[v*4+2], -lim), lim))
		f3 := int64(min(max(coef[v*4+3], -lim), lim))
		if f1 == 0 && f2 == 0 && f3 == 0 {
			d := f0 * m[0][0]
			tmp[v*4], tmp[v*4+1], tmp[v*4+2], tmp[v*4+3] = d, d, d, d
			continue
		}
		for x := 0; x < 4; x++ {
			tmp[v*4+x] = f0*m[x][0] + f1*m[x][1] + f2*m[x][2] + f3*m[x][3]
		}
	}
	const shift = 2 * idctBits
	for x := 0; x < 4; x++ {
		t0, t1, t2, t3 := tmp[x], tmp[4+x], tmp[8+x], tmp[12+x]
		for y := 0; y < 4; y++ {
			s := t0*m[y][0] + t1*m[y][1] + t2*m[y][2] + t3*m[y][3]
			dst[y*stride+x] = clampByte(int32((s+1<<(shift-1))>>shift) + 128)
		}
	}
}

// transform2 is the 2×2 case.
func (t *idctTable) transform2(coef []int32, dst []byte, stride int) {
	const lim = 1 << 15
	a := int64(min(max(coef[0], -lim), lim))
	b := int64(min(max(coef[1], -lim), lim))
	c := int64(min(max(coef[2], -lim), lim))
	e := int64(min(max(coef[3], -lim), lim))
	m0, m1 := int64(t.m[0][0]), int64(t.m[0][1]) // m[1][1] = -m[0][1]
	// rows
	r00, r01 := a*m0+b*m1, a*m0-b*m1
	r10, r11 := c*m0+e*m1, c*m0-e*m1
	const shift = 2 * idctBits
	out := func(s int64) byte { return clampByte(int32((s+1<<(shift-1))>>shift) + 128) }
	dst[0] = out(r00*m0 + r10*m1)
	dst[1] = out(r01*m0 + r11*m1)
	dst[stride] = out(r00*m0 - r10*m1)
	dst[stride+1] = out(r01*m0 - r11*m1)
}
