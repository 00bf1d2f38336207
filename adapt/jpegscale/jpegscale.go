// Package jpegscale decodes baseline JPEG images directly at 1/2, 1/4 or
// 1/8 of their size.
//
// Design note. A camera JPEG is mostly Huffman-coded DCT coefficients, and
// the inverse DCT of every 8×8 block is where a full decoder spends much of
// its time and memory. When the caller wants a thumbnail anyway, the
// high-frequency coefficients are not needed: evaluating the 8-point IDCT of
// ITU-T T.81 (A.3.3)
//
//	f(x) = 1/2 · Σ_u C(u)·F(u)·cos((2x+1)uπ/16),  C(0) = 1/√2, C(u>0) = 1,
//
// at the centres of N equal groups of pixels, x = (2k+1)·8/(2N) − 1/2, gives
//
//	f_N(k) = 1/2 · Σ_{u<N} C(u)·F(u)·cos((2k+1)uπ/(2N)),
//
// an N-point transform on the N lowest coefficients, with N = 8/scale: DC only
// for 1/8, 2×2 for 1/4, 4×4 for 1/2. The result is an N×N block that closely
// matches the full block box-filtered by the scale factor. Coefficients past
// the last one an N×N transform needs (zig-zag index 24 for N = 4) are still
// Huffman-decoded, to advance the bit stream, but never dequantized or stored.
//
// Each component is decoded into its own plane at reduced size, so the output
// stays in YCbCr with the source's chroma subsampling (an *image.YCbCr), or
// is an *image.Gray for one-component images. The entropy decoding is
// inherently sequential; the IDCT of each MCU row runs on a second goroutine
// while the next row is being Huffman-decoded.
//
// Only the sequential Huffman 8-bit process (SOF0, SOF1) with one or three
// components is handled here: everything else (progressive, arithmetic,
// lossless, 12-bit, CMYK, RGB-transformed Adobe files) is reported as
// ErrUnsupported so the caller can fall back to image/jpeg.
package jpegscale

import (
	"errors"
	"fmt"
	"image"
)

// ErrUnsupported reports a valid-looking JPEG that uses a coding process this
// package does not implement; the caller should decode it another way.
var ErrUnsupported = errors.New("jpegscale: unsupported JPEG process")

// ErrTooLarge reports a JPEG whose header announces more pixels than
// Options.MaxPixels allows. Nothing is allocated for the image.
var ErrTooLarge = errors.New("jpegscale: image too large")

// DefaultMaxPixels is the source pixel limit used when Options.MaxPixels is 0.
const DefaultMaxPixels = 50_000_000

// A FormatError reports malformed JPEG data at a byte offset.
type FormatError struct {
	Offset int    // byte offset into the input
	Msg    string // what is wrong
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("jpegscale: invalid JPEG at offset %d: %s", e.Offset, e.Msg)
}

// Options control Decode.
type Options struct {
	// Scale is the reduction factor: 2, 4 or 8. 1 is accepted too but is
	// slower than image/jpeg (it uses the same generic transform).
	Scale int
	// MaxPixels bounds the source width×height; 0 means DefaultMaxPixels.
	MaxPixels int64
	// Sequential disables the IDCT goroutine (for measurements).
	Sequential bool
}

// Info describes a JPEG from its frame header.
type Info struct {
	Width, Height int
	Components    int
	// Supported reports whether Decode can handle the file (baseline or
	// extended sequential Huffman, 8-bit, 1 or 3 components).
	Supported bool
	// Progressive reports a progressive (SOF2) file.
	Progressive bool
}

// Probe parses the markers up to the frame header and reports the image
// geometry and whether Decode supports it. It reads no entropy-coded data.
func Probe(data []byte) (Info, error) {
	d := decoder{data: data}
	var info Info
	err := d.parse(true)
	if d.sofSeen {
		info = Info{Width: d.width, Height: d.height, Components: len(d.comps),
			Progressive: d.progressive, Supported: d.unsupported == ""}
	}
	if err != nil && !errors.Is(err, ErrUnsupported) {
		return info, err
	}
	if !d.sofSeen {
		return info, &FormatError{d.pos, "no frame header"}
	}
	return info, nil
}

// ScaleFor returns the largest reduction among 8, 4, 2 and 1 for which a
// w×h image decoded at that scale is still at least minW×minH.
func ScaleFor(w, h, minW, minH int) int {
	for _, s := range []int{8, 4, 2} {
		if (w+s-1)/s >= minW && (h+s-1)/s >= minH {
			return s
		}
	}
	return 1
}

// Decode decodes a baseline JPEG at 1/opts.Scale of its size, rounding up
// (a 4000×3000 image at scale 2 gives 2000×1500, 4001 gives 2001). The result
// is an *image.YCbCr for three-component images and an *image.Gray for one
// component; it does not alias data. Files this package cannot decode yield an
// error wrapping ErrUnsupported; corrupt ones a *FormatError. Decode does not
// panic on any input.
func Decode(data []byte, opts Options) (img image.Image, err error) {
	n := 0
	switch opts.Scale {
	case 1:
		n = 8
	case 2:
		n = 4
	case 4:
		n = 2
	case 8:
		n = 1
	default:
		return nil, fmt.Errorf("jpegscale: invalid scale %d", opts.Scale)
	}
	maxPix := opts.MaxPixels
	if maxPix <= 0 {
		maxPix = DefaultMaxPixels
	}
	d := decoder{data: data, n: n, scale: opts.Scale, maxPixels: maxPix, sequential: opts.Sequential}
	defer d.stopWorker()
	defer func() {
		// Belt and braces: a bug must not take the relay down.
		if p := recover(); p != nil {
			img, err = nil, &FormatError{d.pos, fmt.Sprintf("internal error: %v", p)}
		}
	}()
	if err := d.parse(false); err != nil {
		return nil, err
	}
	if !d.sofSeen || !d.scanSeen {
		return nil, &FormatError{d.pos, "no image data"}
	}
	return d.image(), nil
}
