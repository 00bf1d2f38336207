// Package adapt fits media to an MMS profile's budget: it decodes images
// (JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC/HEIF) with header checks against
// decompression bombs, applies EXIF orientation, scales them down to the
// profile's dimensions and re-encodes them to a byte budget, and plans how a
// message's total budget is shared among its parts.
//
// The package knows media only: no MIME, no network, no files. Its entry
// points are Fit, for a set of parts, and FitImage, for one image.
package adapt

import (
	"mime"
	"slices"
	"strings"
)

// DefaultMaxPixels is the decompression-bomb limit used when
// Profile.MaxPixels is 0: images (or all frames of an animated GIF together)
// with more pixels are refused before decoding.
const DefaultMaxPixels = 50_000_000

// A Profile describes what a recipient's handset or MMSC accepts.
type Profile struct {
	Name string
	// MaxMessageBytes is the size limit of a whole message; callers
	// usually pass it, less headers and text, to Fit as the media budget.
	MaxMessageBytes int
	// MaxWidth and MaxHeight bound an image's dimensions, in either
	// orientation: a portrait image fits MaxHeight×MaxWidth.
	MaxWidth, MaxHeight int
	// AllowedTypes lists the media types sent as they are, lower case,
	// without parameters (e.g. "image/jpeg", "audio/amr").
	AllowedTypes []string
	// MaxTextBytes bounds a text part, in bytes of UTF-8.
	MaxTextBytes int
	// MaxPixels is the decompression-bomb limit; 0 means DefaultMaxPixels.
	MaxPixels int64
	// Transcoder, when not nil, converts audio and video that are not
	// allowed as they are, or do not fit their share, to AMR/3GPP within
	// the budget (see Fit). Nil: no transcoding. Profiles share it.
	Transcoder *Transcoder // transcode: added with adapt/transcode.go
}

var commonTypes = []string{
	"text/plain",
	"image/jpeg", "image/gif", "image/png",
	"audio/amr", "audio/3gpp", "audio/mpeg", "audio/mp4", "audio/aac",
	"video/3gpp", "video/3gpp2", "video/mp4",
	"application/smil",
}

// Profiles returns the built-in profiles: "default" (600 KiB, 1600×1200),
// "basic" (300 KiB, 640×480) and "large" (1 MiB, 3000×3000). The caller
// owns the returned slices.
func Profiles() []Profile {
	mk := func(name string, kib, w, h, text int) Profile {
		return Profile{Name: name, MaxMessageBytes: kib * 1024, MaxWidth: w, MaxHeight: h,
			AllowedTypes: slices.Clone(commonTypes), MaxTextBytes: text, MaxPixels: DefaultMaxPixels}
	}
	return []Profile{
		mk("default", 600, 1600, 1200, 5000),
		mk("basic", 300, 640, 480, 1000),
		mk("large", 1024, 3000, 3000, 10000),
	}
}

// LookupProfile returns the built-in profile with the given name
// (case-insensitive).
func LookupProfile(name string) (Profile, bool) {
	for _, p := range Profiles() {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return Profile{}, false
}

// Allows reports whether the media type ct (parameters ignored) may be sent
// as it is.
func (p Profile) Allows(ct string) bool {
	return slices.Contains(p.AllowedTypes, normType(ct))
}

func (p Profile) maxPixels() int64 {
	if p.MaxPixels > 0 {
		return p.MaxPixels
	}
	return DefaultMaxPixels
}

// normType lower-cases a media type and drops its parameters.
func normType(ct string) string {
	if t, _, err := mime.ParseMediaType(ct); err == nil {
		return t
	}
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}
