package adapt

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"runtime"
	"sync"

	"github.com/gen2brain/heic"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"

	"github.com/mmsrelay/mmsrelay/adapt/internal/jpegenc"
	"github.com/mmsrelay/mmsrelay/adapt/jpegscale"
)

// JPEG quality search bounds.
const (
	maxQuality = 85
	minQuality = 30
	// searchSteps bounds the binary search over quality per size.
	searchSteps = 5
	// shrinkRounds bounds how often the dimensions are reduced when even
	// minQuality does not fit.
	shrinkRounds = 6
	minSide      = 16
)

// Image is an adapted image.
type Image struct {
	Data          []byte // encoded image; may alias the input if unchanged
	ContentType   string // "image/jpeg", "image/png" or "image/gif"
	Width, Height int    // as displayed (after orientation)
	// Unchanged reports that Data is the input, passed through.
	Unchanged bool
}

var initHEIC = sync.OnceFunc(heic.Init)

// Init compiles the WebAssembly HEIC decoder once (about a second of CPU),
// so that the first HEIC image does not pay for it. It is safe to call more
// than once and from several goroutines; FitImage calls it lazily otherwise.
//
// github.com/gen2brain/heic (v0.4.5) picks its back end in a package init
// function: it dlopens a system "libheif.so" when the binary is dynamically
// linked, and uses its embedded WebAssembly build (run by wazero, pure Go)
// otherwise. The choice cannot be changed at run time; build with
// -tags nodynamic to force the pure-Go path. HEICBackend reports which one
// is in use.
func Init() { initHEIC() }

// HEICBackend reports "libheif" when the system library is in use and
// "wasm" for the embedded pure-Go decoder.
func HEICBackend() string {
	if heic.Dynamic() == nil {
		return "libheif"
	}
	return "wasm"
}

// FitImage adapts one image to p: at most p.MaxWidth×p.MaxHeight (either
// orientation), EXIF orientation applied (JPEG), encoded in an allowed type
// within budget bytes. It checks the header dimensions against p.MaxPixels
// before decoding anything. The result may alias data when the image already
// fits. Errors are *ImageError, or ctx's error.
func FitImage(ctx context.Context, data []byte, budget int, p Profile) (Image, error) {
	format := sniffFormat(data)
	if format == "" {
		return Image{}, imgErr("", ErrUnsupportedFormat, nil)
	}
	if format == "heic" {
		Init()
	}
	hi, err := decodeHeader(format, data)
	if err != nil {
		return Image{}, err
	}
	if int64(hi.w)*int64(hi.h)*int64(hi.frames) > p.maxPixels() {
		return Image{}, imgErr(format, ErrTooManyPixels, nil)
	}
	if err := ctx.Err(); err != nil {
		return Image{}, err
	}
	o := 1
	if format == "jpeg" {
		o = jpegOrientation(data)
	}
	// Target size, in the stored orientation.
	boxW, boxH := p.MaxWidth, p.MaxHeight
	if (hi.w < hi.h) != (boxW < boxH) { // portrait image in a landscape box: turn the box
		boxW, boxH = boxH, boxW
	}
	tw, th := fitDims(hi.w, hi.h, boxW, boxH)
	ct := contentTypeOf(format)
	fitsDims := tw == hi.w && th == hi.h
	dispW, dispH := hi.w, hi.h
	if swapsAxes(o) {
		dispW, dispH = hi.h, hi.w
	}

	// Pass through what already fits, once it is known to decode.
	if fitsDims && o == 1 && len(data) <= budget && p.Allows(ct) {
		if err := validate(format, data, p.maxPixels()); err != nil {
			return Image{}, err
		}
		return Image{Data: data, ContentType: ct, Width: dispW, Height: dispH, Unchanged: true}, nil
	}

	img, err := decode(format, data, tw, th, hi, p.maxPixels())
	if err != nil {
		return Image{}, err
	}
	if err := ctx.Err(); err != nil {
		return Image{}, err
	}
	workers := runtime.GOMAXPROCS(0)
	if b := img.Bounds(); b.Dx() != tw || b.Dy() != th {
		img = resize(img, tw, th, workers)
	}
	img = orient(img, o)
	return encodeBudget(ctx, format, img, budget, p, workers)
}

// validate checks that data will display. A JPEG is checked by its
// structure (headers that parse, a scan, an end-of-image marker at the end)
// without entropy decoding: that would cost more than the whole rest of a
// conversion that needs no adaptation, and phones show a JPEG with a damaged
// scan anyway. Other formats are decoded.
func validate(format string, data []byte, maxPixels int64) error {
	if format == "jpeg" {
		if jpegStructureOK(data) {
			return nil
		}
		if _, err := jpegscale.Decode(data, jpegscale.Options{Scale: 8, MaxPixels: maxPixels}); err == nil {
			return nil
		}
	}
	if format == "gif" {
		return safely(format, func() error {
			_, err := gif.DecodeAll(bytes.NewReader(data))
			return err
		})
	}
	_, err := decode(format, data, 1, 1, headerInfo{}, maxPixels)
	return err
}

// jpegStructureOK reports whether data has JPEG headers that parse, a
// start-of-scan and an end-of-image marker at its end (trailing padding
// allowed).
func jpegStructureOK(data []byte) bool {
	info, err := jpegscale.Probe(data)
	if err != nil || info.Width <= 0 || info.Height <= 0 {
		return false
	}
	end := bytes.TrimRight(data, "\x00\r\n ")
	if len(end) < 4 || end[len(end)-2] != 0xFF || end[len(end)-1] != 0xD9 {
		return false
	}
	return bytes.Contains(data, []byte{0xFF, 0xDA})
}

// safely runs f, turning panics and errors into ErrBroken.
func safely(format string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = imgErr(format, ErrBroken, p)
		}
	}()
	if err := f(); err != nil {
		return imgErr(format, ErrBroken, err)
	}
	return nil
}

// decode decodes the image, for JPEG at the largest DCT reduction that
// still gives at least tw×th.
func decode(format string, data []byte, tw, th int, hi headerInfo, maxPixels int64) (image.Image, error) {
	var img image.Image
	err := safely(format, func() error {
		var err error
		r := bytes.NewReader(data)
		switch format {
		case "jpeg":
			if hi.w > 0 {
				if s := jpegscale.ScaleFor(hi.w, hi.h, tw, th); s > 1 {
					img, err = jpegscale.Decode(data, jpegscale.Options{Scale: s, MaxPixels: maxPixels})
					if err == nil {
						return nil
					}
				}
			}
			img, err = jpeg.Decode(r)
		case "png":
			img, err = png.Decode(r)
		case "gif":
			img, err = gif.Decode(r)
		case "webp":
			img, err = webp.Decode(r)
		case "bmp":
			img, err = bmp.Decode(r)
		case "tiff":
			img, err = tiff.Decode(r)
		case "heic":
			img, err = heic.Decode(r)
		default:
			err = ErrUnsupportedFormat
		}
		return err
	})
	return img, err
}

// opaque reports whether img has no transparent pixel.
func opaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	return false
}

// flatten composes img over white.
func flatten(img image.Image) image.Image {
	b := img.Bounds()
	m := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(m, m.Rect, image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(m, m.Rect, img, b.Min, draw.Over)
	return m
}

// encodeBudget encodes img in an allowed type within budget, shrinking it if
// even the lowest JPEG quality is too large.
func encodeBudget(ctx context.Context, format string, img image.Image, budget int, p Profile, workers int) (Image, error) {
	out := func(data []byte, ct string, m image.Image) Image {
		return Image{Data: data, ContentType: ct, Width: m.Bounds().Dx(), Height: m.Bounds().Dy()}
	}
	alpha := !opaque(img)
	// Transparent images, and GIF frames, first try to stay lossless.
	if (alpha || format == "gif") && p.Allows("image/png") {
		if format == "gif" && p.Allows("image/gif") {
			if pm, ok := img.(*image.Paletted); ok {
				var buf bytes.Buffer
				if err := gif.Encode(&buf, pm, nil); err == nil && buf.Len() <= budget {
					return out(buf.Bytes(), "image/gif", img), nil
				}
			}
		}
		if alpha {
			var buf bytes.Buffer
			enc := png.Encoder{CompressionLevel: png.DefaultCompression}
			if err := enc.Encode(&buf, img); err == nil && buf.Len() <= budget {
				return out(buf.Bytes(), "image/png", img), nil
			}
		}
	}
	if !p.Allows("image/jpeg") {
		return Image{}, imgErr(format, ErrDoesNotFit, "no allowed output type")
	}
	if alpha {
		img = flatten(img)
	}
	for round := 0; round < shrinkRounds; round++ {
		if err := ctx.Err(); err != nil {
			return Image{}, err
		}
		data, size, err := searchQuality(img, budget)
		if err != nil {
			return Image{}, imgErr(format, ErrBroken, err)
		}
		if data != nil {
			return out(data, "image/jpeg", img), nil
		}
		// Even minQuality is too big: shrink by the area ratio, with margin.
		f := math.Sqrt(float64(budget)/float64(size)) * 0.9
		f = math.Min(f, 0.85)
		bw, bh := img.Bounds().Dx(), img.Bounds().Dy()
		nw, nh := int(float64(bw)*f), int(float64(bh)*f)
		if nw < minSide || nh < minSide {
			break
		}
		img = resize(img, nw, nh, workers)
	}
	return Image{}, imgErr(format, ErrDoesNotFit, nil)
}

// searchQuality finds the highest JPEG quality in [minQuality, maxQuality]
// whose encoding fits budget, trying maxQuality first and then a bounded
// binary search. It returns nil data, and the size at minQuality, if none
// fits.
func searchQuality(img image.Image, budget int) ([]byte, int, error) {
	if m, ok := img.(*image.YCbCr); ok && m.SubsampleRatio == image.YCbCrSubsampleRatio420 && m.Rect.Min == (image.Point{}) {
		return searchQualityWith(func(q int) ([]byte, error) { return jpegenc.Encode(m, q, 0) }, budget)
	}
	return searchQualityWith(func(q int) ([]byte, error) {
		var buf bytes.Buffer
		buf.Grow(min(budget+budget/4, 4<<20))
		err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q})
		return buf.Bytes(), err
	}, budget)
}

// searchQualityWith runs the search of searchQuality with encoder enc.
func searchQualityWith(enc func(q int) ([]byte, error), budget int) ([]byte, int, error) {
	data, err := enc(maxQuality)
	if err != nil {
		return nil, 0, err
	}
	if len(data) <= budget {
		return data, len(data), nil
	}
	var best []byte
	lo, hi := minQuality, maxQuality-1
	lowSize := 0
	for i := 0; i < searchSteps && lo <= hi; i++ {
		q := (lo + hi) / 2
		if i == 0 {
			// First probe the bottom: if even that fails, shrink at once.
			q = lo
		}
		d, err := enc(q)
		if err != nil {
			return nil, 0, err
		}
		if q == minQuality {
			lowSize = len(d)
		}
		if len(d) <= budget {
			best = d
			lo = q + 1
		} else {
			hi = q - 1
			if q == minQuality {
				return nil, lowSize, nil
			}
		}
	}
	if best == nil {
		return nil, max(lowSize, len(data)), nil
	}
	return best, len(best), nil
}
