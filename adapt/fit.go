package adapt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Item is one media part: a file name (for notes), its declared content
// type and its bytes.
type Item struct {
	Name        string
	ContentType string
	Data        []byte
}

// Reason says why an item was dropped.
type Reason int

// Reasons for dropping an item.
const (
	ReasonTooLarge      Reason = iota + 1 // does not fit the remaining budget
	ReasonUnsupported                     // type not allowed by the profile
	ReasonBrokenImage                     // image that fails to decode
	ReasonTooManyPixels                   // image over the profile's MaxPixels
)

var reasonText = map[Reason]string{
	ReasonTooLarge:      "too large",
	ReasonUnsupported:   "unsupported type",
	ReasonBrokenImage:   "broken image",
	ReasonTooManyPixels: "image too large",
}

func (r Reason) String() string {
	if s, ok := reasonText[r]; ok {
		return s
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Dropped records an item that was not sent.
type Dropped struct {
	Name        string
	ContentType string
	Size        int // bytes of the original
	Reason      Reason
	Err         error // the underlying error, if any
	// Note is a short line for the recipient, e.g.
	// "[invoice.pdf (1.2 MB) was not sent (unsupported type)]".
	Note string
}

// Result is the outcome of Fit: the items to send, in input order, and the
// ones dropped.
type Result struct {
	Items   []Item
	Dropped []Dropped
	// Notes are lines for the recipient about items that were sent
	// changed in a way they should know of, in input order: a clip cut
	// short to fit (see CutNote).
	Notes []string // transcode
}

// Size returns the total bytes of the kept items.
func (r Result) Size() int {
	n := 0
	for _, it := range r.Items {
		n += len(it.Data)
	}
	return n
}

// minImageShare is what an image needs at the very least; audio and video
// are kept only if every image can still get this much.
const minImageShare = 8 * 1024

// Fit shares budget bytes among items according to p.
//
// Text parts (text/plain) are truncated to p.MaxTextBytes and counted first.
// Audio, video and other allowed types pass through unchanged, in order,
// while they leave at least a small share for each image. Without
// p.Transcoder, the ones that do not are dropped as too large, and audio
// and video of types not allowed as unsupported. With p.Transcoder, those
// audio and video items are transcoded instead, in input order, each to at
// most an equal share of what is left among the remaining clips and the
// images (so images stay first-class); a clip that cannot be transcoded to
// fit is dropped as before, with the transcoder's error in Dropped.Err, and
// one cut short is sent with a line in Result.Notes.
//
// Images (any decodable format, including ones not allowed as such, like
// HEIC or WebP) share the rest in proportion to their pixel counts once
// scaled to the profile, smallest first, each image handing what it did not
// use to the next. Anything else (PDF, office files, archives) is dropped as
// unsupported.
//
// Output items keep their names, with the extension changed when the type
// changed; their Data may alias the input's. Fit only returns an error when
// ctx is done.
func Fit(ctx context.Context, items []Item, budget int, p Profile) (Result, error) {
	type slot struct {
		item    Item
		kept    bool
		dropped *Dropped
		weight  float64
	}
	slots := make([]slot, len(items))
	var res Result
	drop := func(i int, r Reason, err error) {
		it := items[i]
		slots[i].dropped = &Dropped{Name: it.Name, ContentType: normType(it.ContentType),
			Size: len(it.Data), Reason: r, Err: err, Note: Note(it.Name, len(it.Data), r)}
	}
	remaining := budget
	var images, passthrough, clips []int
	for i, it := range items {
		ct := normType(it.ContentType)
		switch {
		case strings.HasPrefix(ct, "text/plain"):
			data := it.Data
			if p.MaxTextBytes > 0 {
				data = []byte(TruncateText(string(data), p.MaxTextBytes))
			}
			if len(data) > remaining {
				drop(i, ReasonTooLarge, nil)
				continue
			}
			remaining -= len(data)
			slots[i] = slot{item: Item{it.Name, it.ContentType, data}, kept: true}
		case sniffFormat(it.Data) != "" || strings.HasPrefix(ct, "image/"):
			images = append(images, i)
		case p.Allows(ct):
			passthrough = append(passthrough, i)
		case p.Transcoder != nil && isClip(ct): // transcode
			clips = append(clips, i)
		default:
			drop(i, ReasonUnsupported, nil)
		}
	}
	// Check image headers first, so that broken images reserve nothing.
	var good []int
	for _, i := range images {
		data := items[i].Data
		format := sniffFormat(data)
		if format == "" {
			drop(i, ReasonUnsupported, imgErr("", ErrUnsupportedFormat, nil))
			continue
		}
		hi, err := decodeHeader(format, data)
		if err != nil {
			drop(i, ReasonBrokenImage, err)
			continue
		}
		if int64(hi.w)*int64(hi.h)*int64(hi.frames) > p.maxPixels() {
			drop(i, ReasonTooManyPixels, imgErr(format, ErrTooManyPixels, nil))
			continue
		}
		w, h := fitDims(hi.w, hi.h, max(p.MaxWidth, p.MaxHeight), max(p.MaxWidth, p.MaxHeight))
		slots[i].weight = float64(w) * float64(h)
		good = append(good, i)
	}
	for _, i := range passthrough {
		n := len(items[i].Data)
		if n > remaining-minImageShare*len(good) {
			if p.Transcoder != nil && isClip(normType(items[i].ContentType)) { // transcode
				clips = append(clips, i)
				continue
			}
			drop(i, ReasonTooLarge, nil)
			continue
		}
		remaining -= n
		slots[i] = slot{item: items[i], kept: true}
	}
	// transcode: audio and video to fit, in input order, each to an equal
	// share of what is left among the clips still to do and the images.
	slices.Sort(clips)
	for k, i := range clips {
		it := items[i]
		ct := normType(it.ContentType)
		share := min(remaining-minImageShare*len(good), remaining/(len(clips)-k+len(good)))
		var clip *Clip
		err := error(&TranscodeError{Kind: "media", Err: ErrDoesNotFit, Detail: "no room left"})
		if share > 0 {
			if strings.HasPrefix(ct, "audio/") {
				clip, err = p.Transcoder.Audio(ctx, it.Data, share)
			} else {
				clip, err = p.Transcoder.Video(ctx, it.Data, share)
			}
		}
		switch {
		case err == nil:
			remaining -= len(clip.Data)
			slots[i] = slot{item: Item{renameExt(it.Name, clip.ContentType), clip.ContentType, clip.Data}, kept: true}
			if clip.Cut {
				res.Notes = append(res.Notes, CutNote(it.Name, clip.Duration))
			}
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return Result{}, err
		case errors.Is(err, ErrDoesNotFit), errors.Is(err, ErrInputTooLarge), p.Allows(ct):
			drop(i, ReasonTooLarge, err)
		default:
			drop(i, ReasonUnsupported, err)
		}
	}
	// Images: smallest originals first, so that what they leave over flows
	// to the larger ones.
	slices.SortStableFunc(good, func(a, b int) int { return cmp.Compare(len(items[a].Data), len(items[b].Data)) })
	totalW := 0.0
	for _, i := range good {
		totalW += slots[i].weight
	}
	for k, i := range good {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		// Proportional share, but a small image may take up to an equal
		// share, so that it passes unchanged when it can.
		share := remaining
		if totalW > 0 {
			share = int(float64(remaining) * slots[i].weight / totalW)
		}
		share = max(share, min(len(items[i].Data), remaining/(len(good)-k)))
		totalW -= slots[i].weight
		img, err := FitImage(ctx, items[i].Data, share, p)
		switch {
		case err == nil:
			remaining -= len(img.Data)
			name := items[i].Name
			if !img.Unchanged {
				name = renameExt(name, img.ContentType)
			}
			slots[i] = slot{item: Item{name, img.ContentType, img.Data}, kept: true}
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return Result{}, err
		case errors.Is(err, ErrDoesNotFit):
			drop(i, ReasonTooLarge, err)
		case errors.Is(err, ErrTooManyPixels):
			drop(i, ReasonTooManyPixels, err)
		case errors.Is(err, ErrUnsupportedFormat):
			drop(i, ReasonUnsupported, err)
		default:
			drop(i, ReasonBrokenImage, err)
		}
	}
	for _, s := range slots {
		switch {
		case s.kept:
			res.Items = append(res.Items, s.item)
		case s.dropped != nil:
			res.Dropped = append(res.Dropped, *s.dropped)
		}
	}
	return res, nil
}

// renameExt gives name the extension of content type ct when it changed.
func renameExt(name, ct string) string {
	ext := map[string]string{"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif",
		TypeAMR: ".amr", TypeAudio3GPP: ".3gp", TypeVideo3GPP: ".3gp"}[ct]
	if name == "" || ext == "" {
		return name
	}
	base := name
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base = name[:i]
		if e := strings.ToLower(name[i:]); e == ext || (ext == ".jpg" && e == ".jpeg") {
			return name
		}
	}
	return base + ext
}

// Note is the line shown to the recipient in place of a dropped item, e.g.
// "[invoice.pdf (1.2 MB) was not sent (unsupported type)]".
func Note(name string, size int, r Reason) string {
	if name == "" {
		name = "attachment"
	}
	return fmt.Sprintf("[%s (%s) was not sent (%s)]", name, HumanSize(size), r)
}

// isClip reports whether media type ct is audio or video, which a
// Transcoder may convert.
func isClip(ct string) bool { // transcode
	return strings.HasPrefix(ct, "audio/") || strings.HasPrefix(ct, "video/") || ct == "application/ogg"
}

// CutNote is the line shown to the recipient for a clip of which only the
// first d could be sent, e.g. "[talk.mp4 was cut to its first 0:30 to fit]".
func CutNote(name string, d time.Duration) string { // transcode
	if name == "" {
		name = "clip"
	}
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("[%s was cut to its first %d:%02d to fit]", name, s/60, s%60)
}

// HumanSize formats n bytes with 1 KB = 1024 bytes: "512 bytes", "37 KB",
// "1.2 MB".
func HumanSize(n int) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d bytes", n)
	case n < 1024*1024:
		return fmt.Sprintf("%d KB", (n+512)/1024)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
}

// TruncateText returns s cut to at most max bytes on a UTF-8 boundary. A
// cut string ends with "…" (counted in max) when max leaves room for it.
func TruncateText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	const ell = "…"
	limit := max
	if max > 2*len(ell) {
		limit = max - len(ell)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if limit != max {
		return s[:cut] + ell
	}
	return s[:cut]
}
