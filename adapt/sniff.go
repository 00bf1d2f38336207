package adapt

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	"github.com/gen2brain/heic"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// sniffFormat names the image format from its magic bytes, or "".
func sniffFormat(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a")):
		return "gif"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "webp"
	case bytes.HasPrefix(b, []byte("BM")) && len(b) >= 26:
		return "bmp"
	case bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*")):
		return "tiff"
	case isHEIF(b):
		return "heic"
	}
	return ""
}

// isHEIF checks the ISO-BMFF ftyp box for a HEIF image brand.
func isHEIF(b []byte) bool {
	if len(b) < 16 || string(b[4:8]) != "ftyp" {
		return false
	}
	size := int(binary.BigEndian.Uint32(b))
	if size < 16 || size > len(b) || size > 4096 {
		size = min(len(b), 64)
	}
	for i := 8; i+4 <= size; i += 4 {
		if i == 12 {
			continue // minor version
		}
		switch string(b[i : i+4]) {
		case "heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1":
			return true
		}
	}
	return false
}

// contentTypeOf gives the media type for a sniffed format.
func contentTypeOf(format string) string {
	if format == "" {
		return ""
	}
	return "image/" + format
}

// headerInfo holds what is known before decoding.
type headerInfo struct {
	w, h   int
	frames int // GIF frames; 1 otherwise
}

// decodeHeader reads an image's dimensions without decoding its pixels.
func decodeHeader(format string, data []byte) (hi headerInfo, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = imgErr(format, ErrBroken, p)
		}
	}()
	r := bytes.NewReader(data)
	var cfg image.Config
	switch format {
	case "jpeg":
		cfg, err = jpeg.DecodeConfig(r)
	case "png":
		cfg, err = png.DecodeConfig(r)
	case "gif":
		cfg, err = gif.DecodeConfig(r)
	case "webp":
		cfg, err = webp.DecodeConfig(r)
	case "bmp":
		cfg, err = bmp.DecodeConfig(r)
	case "tiff":
		cfg, err = tiff.DecodeConfig(r)
	case "heic":
		cfg, err = heic.DecodeConfig(r)
	default:
		return hi, imgErr(format, ErrUnsupportedFormat, nil)
	}
	if err != nil {
		return hi, imgErr(format, ErrBroken, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return hi, imgErr(format, ErrBroken, "zero dimension")
	}
	hi = headerInfo{w: cfg.Width, h: cfg.Height, frames: 1}
	if format == "gif" {
		n, ok := gifFrames(data)
		if !ok {
			return hi, imgErr(format, ErrBroken, "bad block structure")
		}
		hi.frames = max(n, 1)
	}
	return hi, nil
}

// gifFrames counts image descriptors by walking the GIF block structure
// (GIF89a §17-§27) without decompressing anything.
func gifFrames(b []byte) (int, bool) {
	if len(b) < 13 {
		return 0, false
	}
	p := 13
	if b[10]&0x80 != 0 {
		p += 3 << (b[10]&7 + 1) // global colour table
	}
	skipSub := func() bool {
		for p < len(b) {
			n := int(b[p])
			p++
			if n == 0 {
				return true
			}
			p += n
		}
		return false
	}
	frames := 0
	for p < len(b) {
		switch b[p] {
		case 0x3B: // trailer
			return frames, true
		case 0x21: // extension
			p += 2
			if !skipSub() {
				return frames, frames > 0
			}
		case 0x2C: // image descriptor
			if p+10 > len(b) {
				return frames, frames > 0
			}
			flags := b[p+9]
			p += 10
			if flags&0x80 != 0 {
				p += 3 << (flags&7 + 1)
			}
			p++ // LZW minimum code size
			frames++
			if !skipSub() {
				return frames, true // truncated last frame: let the decoder judge
			}
		default:
			return frames, frames > 0
		}
	}
	return frames, frames > 0
}

// jpegOrientation returns the EXIF Orientation (1..8) of a JPEG, or 1. It
// reads the APP1 "Exif" segment (CIPA DC-008, TIFF 6.0 IFD0 tag 0x0112) and
// looks at no more than the segment's own bytes.
func jpegOrientation(b []byte) int {
	p := 2
	for p+4 <= len(b) {
		if b[p] != 0xFF {
			return 1
		}
		m := b[p+1]
		if m == 0xFF {
			p++
			continue
		}
		if m == 0xDA || m == 0xD9 { // SOS, EOI: no more metadata
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[p+2:]))
		if n < 2 || p+2+n > len(b) {
			return 1
		}
		seg := b[p+4 : p+2+n]
		if m == 0xE1 && len(seg) > 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := exifOrientation(seg[6:]); o != 0 {
				return o
			}
		}
		p += 2 + n
	}
	return 1
}

// exifOrientation parses a TIFF structure and returns IFD0's Orientation,
// or 0 if absent or malformed.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(t[2:]) != 42 {
		return 0
	}
	ifd := int(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > len(t) {
		return 0
	}
	n := int(bo.Uint16(t[ifd:]))
	for i := 0; i < n && i < 512; i++ {
		e := ifd + 2 + 12*i
		if e+12 > len(t) {
			return 0
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		typ, count := bo.Uint16(t[e+2:]), bo.Uint32(t[e+4:])
		if typ != 3 || count != 1 {
			return 0
		}
		o := int(bo.Uint16(t[e+8:]))
		if o < 1 || o > 8 {
			return 0
		}
		return o
	}
	return 0
}
