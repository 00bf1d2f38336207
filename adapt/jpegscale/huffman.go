package jpegscale

import (
	"encoding/binary"
	"errors"
)

const lookBits = 9

// huffTable is a decoding table built from a DHT segment (T.81 C.2, F.2.2.3):
// a lookBits-bit lookup for short codes and the MAXCODE/VALPTR/MINCODE
// arrays of Figure F.16 for the rest.
type huffTable struct {
	lookup  [1 << lookBits]uint16 // (length<<8 | value), 0 if longer
	maxcode [18]int32             // -1 if no code of that length
	valptr  [17]int32
	mincode [17]int32
	vals    [256]uint8
}

var errBadHuffman = errors.New("bad Huffman table")

// build generates the code table from the BITS counts and HUFFVAL values
// (T.81 C.2: Figures C.1 and C.2).
func (h *huffTable) build(counts [17]int, vals []byte) error {
	*h = huffTable{}
	copy(h.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		h.valptr[l] = k
		h.mincode[l] = code
		code += int32(counts[l])
		k += int32(counts[l])
		if code > 1<<l {
			return errBadHuffman // over-subscribed
		}
		if counts[l] > 0 {
			h.maxcode[l] = code - 1
		} else {
			h.maxcode[l] = -1
		}
		code <<= 1
	}
	h.maxcode[17] = 1 << 30 // sentinel, never reached for valid data
	// Fill the fast table.
	for l := 1; l <= lookBits; l++ {
		for i := int32(0); i < int32(counts[l]); i++ {
			c := h.mincode[l] + i
			v := h.vals[h.valptr[l]+i]
			shift := uint(lookBits - l)
			base := c << shift
			for j := int32(0); j < 1<<shift; j++ {
				h.lookup[base+j] = uint16(l)<<8 | uint16(v)
			}
		}
	}
	return nil
}

// fill tops the bit accumulator up to at least 57 bits. At a marker or at the
// end of data it feeds zero bytes (T.81 F.2.2.5 leaves this to the decoder;
// libjpeg does the same), counting them so that a runaway stream stops.
func (d *decoder) fill() {
	// Fast path: eight bytes without 0xFF can be taken whole.
	if !d.marker && d.pos+8 <= len(d.data) {
		v := binary.BigEndian.Uint64(d.data[d.pos:])
		x := ^v // 0xFF bytes become zero bytes
		if (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
			k := (64 - d.nbits) / 8 // whole bytes that fit
			d.acc |= v >> (64 - 8*k) << (64 - 8*k - d.nbits)
			d.nbits += 8 * k
			d.pos += int(k)
			return
		}
	}
	for d.nbits <= 56 {
		var b byte
		if !d.marker && d.pos < len(d.data) {
			b = d.data[d.pos]
			if b == 0xFF {
				if d.pos+1 < len(d.data) && d.data[d.pos+1] == 0x00 {
					d.pos += 2
				} else {
					d.marker = true // leave pos at the marker
					b = 0
					d.pad++
				}
			} else {
				d.pos++
			}
		} else {
			d.pad++
		}
		d.acc |= uint64(b) << (56 - d.nbits)
		d.nbits += 8
	}
}

// decodeHuff decodes one Huffman-coded symbol (T.81 F.2.2.3).
func (d *decoder) decodeHuff(h *huffTable) (uint8, bool) {
	if d.nbits < 16 {
		d.fill()
	}
	if e := h.lookup[d.acc>>(64-lookBits)]; e != 0 {
		l := uint(e >> 8)
		d.acc <<= l
		d.nbits -= l
		return uint8(e), true
	}
	return d.decodeHuffSlow(h)
}

// decodeHuffSlow handles codes longer than lookBits; d.nbits ≥ 16.
func (d *decoder) decodeHuffSlow(h *huffTable) (uint8, bool) {
	for l := uint(lookBits + 1); l <= 16; l++ {
		code := int32(d.acc >> (64 - l))
		if code <= h.maxcode[l] {
			d.acc <<= l
			d.nbits -= l
			return h.vals[h.valptr[l]+code-h.mincode[l]], true
		}
	}
	return 0, false
}

// receiveExtend reads s bits and sign-extends them (T.81 F.2.2.1, Figure
// F.12). s must be in 1..16.
func (d *decoder) receiveExtend(s uint) int32 {
	if d.nbits < s {
		d.fill()
	}
	v := int32(d.acc >> (64 - s))
	d.acc <<= s
	d.nbits -= s
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// resetBits drops buffered bits, as at a restart marker or the end of a scan.
func (d *decoder) resetBits() {
	d.acc, d.nbits, d.marker, d.pad = 0, 0, false, 0
}
