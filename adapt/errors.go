package adapt

import (
	"errors"
	"fmt"
)

// Errors reported (wrapped in an *ImageError) by FitImage.
var (
	// ErrTooManyPixels: the header announces more pixels than the
	// profile's MaxPixels (a decompression bomb or a huge image). Nothing
	// was decoded.
	ErrTooManyPixels = errors.New("too many pixels")
	// ErrUnsupportedFormat: not an image format this package decodes.
	ErrUnsupportedFormat = errors.New("unsupported image format")
	// ErrBroken: the image could not be decoded.
	ErrBroken = errors.New("broken image")
	// ErrDoesNotFit: even at the lowest quality and a small size the
	// image exceeds the byte budget.
	ErrDoesNotFit = errors.New("does not fit the budget")
)

// An ImageError reports why an image could not be adapted. Err is one of the
// Err* sentinels above, or a context error.
type ImageError struct {
	Format string // sniffed format, e.g. "jpeg", or "" if unknown
	Err    error
	Detail string // optional detail, e.g. the decoder's message
}

func (e *ImageError) Error() string {
	s := "adapt: "
	if e.Format != "" {
		s += e.Format + ": "
	}
	s += e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *ImageError) Unwrap() error { return e.Err }

func imgErr(format string, err error, detail any) *ImageError {
	e := &ImageError{Format: format, Err: err}
	if detail != nil {
		e.Detail = fmt.Sprint(detail)
	}
	return e
}
