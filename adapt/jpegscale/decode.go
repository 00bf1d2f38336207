package jpegscale

import (
	"fmt"
	"image"
	"sync"
)

// Marker codes, ITU-T T.81 Table B.1.
const (
	mSOF0 = 0xC0 // baseline sequential, Huffman
	mSOF1 = 0xC1 // extended sequential, Huffman
	mSOF2 = 0xC2 // progressive, Huffman
	mDHT  = 0xC4
	mRST0 = 0xD0
	mRST7 = 0xD7
	mSOI  = 0xD8
	mEOI  = 0xD9
	mSOS  = 0xDA
	mDQT  = 0xDB
	mDNL  = 0xDC
	mDRI  = 0xDD
	mAPP0 = 0xE0
	mAPPE = 0xEE
	mCOM  = 0xFE
)

// unzig maps a zig-zag index to the natural (row*8+col) index, T.81 Figure A.6.
var unzig = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

type component struct {
	id     uint8
	h, v   int   // sampling factors
	tq     uint8 // quantization table selector
	td, ta uint8 // Huffman table selectors of the current scan
	pred   int32 // DC predictor
	bw, bh int   // blocks in the padded plane
	plane  []byte
	stride int
}

type decoder struct {
	data []byte
	pos  int

	// Bit reader: the top nbits bits of acc are unread entropy-coded bits.
	acc    uint64
	nbits  uint
	marker bool // a marker was met; the reader now feeds zero bits
	pad    int  // zero bytes fed so far past a marker or the end

	n, scale   int
	maxPixels  int64
	sequential bool

	quant  [4][64]int32 // zig-zag order
	qset   [4]bool
	huff   [2][4]huffTable
	hset   [2][4]bool
	comps  []component
	width  int
	height int
	hmax   int
	vmax   int
	mcusX  int
	mcusY  int
	ri     int

	sofSeen, scanSeen bool
	progressive       bool
	adobeTransform    int // -1 if no Adobe APP14 segment
	adobeSeen         bool
	unsupported       string

	// Per-scale coefficient selection: small[k] is the index in the n×n
	// block of zig-zag coefficient k, or -1; kmax is the last one needed.
	small [64]int8
	kmax  int
	idct  idctTable

	// IDCT worker (see scan.go).
	work   chan *rowJob
	free   chan *rowJob
	done   chan struct{}
	wg     sync.WaitGroup
	werrMu sync.Mutex
	werr   error
}

func (d *decoder) errf(format string, args ...any) error {
	return &FormatError{d.pos, fmt.Sprintf(format, args...)}
}

func (d *decoder) u16(at int) int { return int(d.data[at])<<8 | int(d.data[at+1]) }

// parse walks the marker segments (T.81 B.2). With headerOnly it stops at
// the frame header.
func (d *decoder) parse(headerOnly bool) error {
	if len(d.data) < 2 || d.data[0] != 0xFF || d.data[1] != mSOI {
		return d.errf("missing SOI marker")
	}
	d.pos = 2
	d.adobeTransform = -1
	for {
		// Find the next marker, skipping garbage and fill bytes (B.1.1.2).
		for d.pos < len(d.data) && d.data[d.pos] != 0xFF {
			d.pos++
		}
		for d.pos < len(d.data) && d.data[d.pos] == 0xFF {
			d.pos++
		}
		if d.pos >= len(d.data) {
			if d.scanSeen {
				return nil // missing EOI: accept what was decoded
			}
			return d.errf("unexpected end of data")
		}
		m := d.data[d.pos]
		d.pos++
		switch {
		case m == mEOI:
			return nil
		case m == 0x00 || m == 0x01 || (m >= mRST0 && m <= mRST7) || m == mSOI:
			continue // stray, no length
		}
		if d.pos+2 > len(d.data) {
			return d.errf("truncated segment length")
		}
		length := d.u16(d.pos)
		if length < 2 || d.pos+length > len(d.data) {
			return d.errf("bad segment length %d", length)
		}
		seg := d.data[d.pos+2 : d.pos+length]
		segStart := d.pos + 2
		d.pos += length
		var err error
		switch {
		case m == mSOF0 || m == mSOF1:
			err = d.parseSOF(seg, segStart)
			if err == nil && headerOnly {
				return nil
			}
		case m == mSOF2:
			d.progressive = true
			if err = d.parseSOF(seg, segStart); err == nil {
				d.unsupported = "progressive"
			}
			if headerOnly {
				return err
			}
			if err == nil {
				err = fmt.Errorf("%w: progressive", ErrUnsupported)
			}
		case m >= 0xC3 && m <= 0xCF && m != mDHT && m != 0xC8 && m != 0xCC:
			d.unsupported = fmt.Sprintf("SOF%d", m-0xC0)
			if err = d.parseSOF(seg, segStart); err == nil || headerOnly {
				d.unsupported = fmt.Sprintf("SOF%d", m-0xC0)
				if headerOnly {
					return err
				}
				err = fmt.Errorf("%w: %s", ErrUnsupported, d.unsupported)
			}
		case m == 0xCC: // DAC: arithmetic coding
			err = fmt.Errorf("%w: arithmetic coding", ErrUnsupported)
		case m == mDHT:
			err = d.parseDHT(seg, segStart)
		case m == mDQT:
			err = d.parseDQT(seg, segStart)
		case m == mDRI:
			if len(seg) != 2 {
				err = &FormatError{segStart, "bad DRI length"}
			} else {
				d.ri = int(seg[0])<<8 | int(seg[1])
			}
		case m == mDNL:
			err = fmt.Errorf("%w: DNL", ErrUnsupported)
		case m == mAPPE:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobeSeen = true
				d.adobeTransform = int(seg[11])
			}
		case m == mSOS:
			if headerOnly {
				return d.errf("scan before frame header")
			}
			err = d.parseSOS(seg, segStart)
		}
		if err != nil {
			return err
		}
	}
}

// parseSOF reads a frame header, T.81 B.2.2.
func (d *decoder) parseSOF(seg []byte, at int) error {
	if d.sofSeen {
		return &FormatError{at, "multiple frame headers"}
	}
	if len(seg) < 6 {
		return &FormatError{at, "short SOF"}
	}
	p := seg[0]
	d.height = int(seg[1])<<8 | int(seg[2])
	d.width = int(seg[3])<<8 | int(seg[4])
	nf := int(seg[5])
	if len(seg) != 6+3*nf || nf == 0 {
		return &FormatError{at, "bad SOF length"}
	}
	if d.width == 0 {
		return &FormatError{at, "zero width"}
	}
	d.comps = make([]component, nf)
	for i := range d.comps {
		c := &d.comps[i]
		c.id = seg[6+3*i]
		c.h = int(seg[7+3*i] >> 4)
		c.v = int(seg[7+3*i] & 15)
		c.tq = seg[8+3*i]
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return &FormatError{at, "bad component parameters"}
		}
		for j := 0; j < i; j++ {
			if d.comps[j].id == c.id {
				return &FormatError{at, "duplicate component id"}
			}
		}
		d.hmax = max(d.hmax, c.h)
		d.vmax = max(d.vmax, c.v)
	}
	d.sofSeen = true
	switch {
	case d.height == 0:
		d.unsupported = "DNL height"
	case p != 8:
		d.unsupported = fmt.Sprintf("%d-bit precision", p)
	case nf != 1 && nf != 3:
		d.unsupported = fmt.Sprintf("%d components", nf)
	case nf == 3 && ratio(d.comps) < 0:
		d.unsupported = "chroma sampling"
	}
	return nil
}

// ratio maps three components' sampling factors to an image.YCbCr
// subsampling ratio, or -1.
func ratio(c []component) image.YCbCrSubsampleRatio {
	if c[1].h != 1 || c[1].v != 1 || c[2].h != 1 || c[2].v != 1 {
		return -1
	}
	switch [2]int{c[0].h, c[0].v} {
	case [2]int{1, 1}:
		return image.YCbCrSubsampleRatio444
	case [2]int{2, 1}:
		return image.YCbCrSubsampleRatio422
	case [2]int{2, 2}:
		return image.YCbCrSubsampleRatio420
	case [2]int{1, 2}:
		return image.YCbCrSubsampleRatio440
	case [2]int{4, 1}:
		return image.YCbCrSubsampleRatio411
	case [2]int{4, 2}:
		return image.YCbCrSubsampleRatio410
	}
	return -1
}

// parseDQT reads quantization tables, T.81 B.2.4.1.
func (d *decoder) parseDQT(seg []byte, at int) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, seg[0]&15
		if tq > 3 || pq > 1 {
			return &FormatError{at, "bad DQT"}
		}
		size := 64 << pq
		if len(seg) < 1+size {
			return &FormatError{at, "short DQT"}
		}
		for k := 0; k < 64; k++ {
			if pq == 0 {
				d.quant[tq][k] = int32(seg[1+k])
			} else {
				d.quant[tq][k] = int32(seg[1+2*k])<<8 | int32(seg[2+2*k])
			}
		}
		d.qset[tq] = true
		seg = seg[1+size:]
		at += 1 + size
	}
	return nil
}

// parseDHT reads Huffman tables, T.81 B.2.4.2.
func (d *decoder) parseDHT(seg []byte, at int) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return &FormatError{at, "short DHT"}
		}
		tc, th := seg[0]>>4, seg[0]&15
		if tc > 1 || th > 3 {
			return &FormatError{at, "bad DHT class or id"}
		}
		var counts [17]int
		total := 0
		for l := 1; l <= 16; l++ {
			counts[l] = int(seg[l])
			total += counts[l]
		}
		if total > 256 || len(seg) < 17+total {
			return &FormatError{at, "bad DHT counts"}
		}
		if err := d.huff[tc][th].build(counts, seg[17:17+total]); err != nil {
			return &FormatError{at, err.Error()}
		}
		d.hset[tc][th] = true
		seg = seg[17+total:]
		at += 17 + total
	}
	return nil
}

// parseSOS reads a scan header (T.81 B.2.3) and decodes the scan.
func (d *decoder) parseSOS(seg []byte, at int) error {
	if !d.sofSeen {
		return &FormatError{at, "scan before frame header"}
	}
	if d.unsupported != "" {
		return fmt.Errorf("%w: %s", ErrUnsupported, d.unsupported)
	}
	if d.adobeSeen && len(d.comps) == 3 && d.adobeTransform == 0 {
		return fmt.Errorf("%w: RGB JPEG", ErrUnsupported)
	}
	if len(seg) < 1 {
		return &FormatError{at, "short SOS"}
	}
	ns := int(seg[0])
	if ns < 1 || ns > 4 || len(seg) != 4+2*ns {
		return &FormatError{at, "bad SOS length"}
	}
	var sc [4]*component
	blocksPerMCU := 0
	for i := 0; i < ns; i++ {
		id := seg[1+2*i]
		var c *component
		for j := range d.comps {
			if d.comps[j].id == id {
				c = &d.comps[j]
			}
		}
		if c == nil {
			return &FormatError{at, "unknown component in scan"}
		}
		for j := 0; j < i; j++ {
			if sc[j] == c {
				return &FormatError{at, "repeated component in scan"}
			}
		}
		c.td, c.ta = seg[2+2*i]>>4, seg[2+2*i]&15
		if c.td > 3 || c.ta > 3 || !d.hset[0][c.td] || !d.hset[1][c.ta] {
			return &FormatError{at, "missing Huffman table"}
		}
		if !d.qset[c.tq] {
			return &FormatError{at, "missing quantization table"}
		}
		sc[i] = c
		blocksPerMCU += c.h * c.v
	}
	if blocksPerMCU > 10 {
		return &FormatError{at, "too many blocks per MCU"}
	}
	ss, se, ahal := seg[1+2*ns], seg[2+2*ns], seg[3+2*ns]
	if ss != 0 || se != 63 || ahal != 0 {
		return &FormatError{at, "bad spectral selection for a sequential scan"}
	}
	if err := d.allocate(); err != nil {
		return err
	}
	d.scanSeen = true
	return d.decodeScan(sc[:ns])
}

// allocate sizes the component planes once, after the checks that the image
// is small enough.
func (d *decoder) allocate() error {
	if d.comps[0].plane != nil {
		return nil
	}
	if int64(d.width)*int64(d.height) > d.maxPixels {
		return fmt.Errorf("%w: %d×%d", ErrTooLarge, d.width, d.height)
	}
	d.mcusX = (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	for i := range d.comps {
		c := &d.comps[i]
		c.bw = d.mcusX * c.h
		c.bh = d.mcusY * c.v
		c.stride = c.bw * d.n
		c.plane = make([]byte, c.stride*c.bh*d.n)
	}
	d.small = [64]int8{}
	d.kmax = 0
	for k := 0; k < 64; k++ {
		r, c := int(unzig[k])/8, int(unzig[k])%8
		if r < d.n && c < d.n {
			d.small[k] = int8(r*d.n + c)
			d.kmax = k
		} else {
			d.small[k] = -1
		}
	}
	d.idct = newIDCTTable(d.n)
	return nil
}

// image wraps the planes as an image without copying.
func (d *decoder) image() image.Image {
	w := (d.width + d.scale - 1) / d.scale
	h := (d.height + d.scale - 1) / d.scale
	r := image.Rect(0, 0, w, h)
	if len(d.comps) == 1 {
		c := &d.comps[0]
		return &image.Gray{Pix: c.plane, Stride: c.stride, Rect: r}
	}
	return &image.YCbCr{
		Y: d.comps[0].plane, Cb: d.comps[1].plane, Cr: d.comps[2].plane,
		YStride: d.comps[0].stride, CStride: d.comps[1].stride,
		SubsampleRatio: ratio(d.comps), Rect: r,
	}
}
