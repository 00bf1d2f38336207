// SMIL presentation and part names.
//
// Design note: an MMS shows its parts as slides described by a small SMIL
// document (OMA "MMS SMIL", a subset of SMIL 2.0 Basic). Phones only honour
// the simplest form, so BuildSMIL writes exactly that: a root-layout, an
// "Image" region on top and a "Text" region below, and one <par> per slide
// that refers to the parts by their Content-Location names. Those names
// must be plain ASCII and unique within the message, which UniqueNames
// takes care of.

package mapping

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Slide is one page of an MMS presentation.
type Slide struct {
	// Media is the Content-Location name of the slide's image, audio or
	// video part (or any other part, written as <ref>); empty for a text
	// slide.
	Media string

	// ContentType is the media type of Media ("image/jpeg"); it selects
	// <img>, <audio>, <video> or <ref>.
	ContentType string

	// Text is the Content-Location name of the slide's text/plain part;
	// may be empty.
	Text string

	// Dur is how long the slide shows; zero means Layout.SlideDur, or
	// Layout.MediaDur for audio and video.
	Dur time.Duration
}

// Layout is the canvas of a presentation. The zero value is a portrait
// 320×480 canvas, 5 s slides and 30 s for audio and video.
type Layout struct {
	Width, Height int           // root-layout in pixels; zero means 320×480
	SlideDur      time.Duration // zero means DefaultSlideDur
	MediaDur      time.Duration // audio/video of unknown length; zero means DefaultMediaDur
}

// Default slide durations of Layout.
const (
	DefaultSlideDur = 5 * time.Second
	DefaultMediaDur = 30 * time.Second
)

// SlidesFor returns the slides of a message: one per media part in order,
// with the text on the first one, or a single text slide when there is no
// media. names and contentTypes are parallel; textName may be empty.
func SlidesFor(names, contentTypes []string, textName string) []Slide {
	var s []Slide
	for i, n := range names {
		ct := ""
		if i < len(contentTypes) {
			ct = contentTypes[i]
		}
		s = append(s, Slide{Media: n, ContentType: ct})
	}
	if textName == "" {
		return s
	}
	if len(s) == 0 {
		return []Slide{{Text: textName}}
	}
	s[0].Text = textName
	return s
}

// BuildSMIL returns a SMIL document presenting slides on layout. Names are
// XML-escaped; the document is well-formed for any input. The Image region
// takes the upper two thirds of the canvas and the Text region the rest
// when both are used; a presentation with only one kind uses the whole
// canvas for it.
func BuildSMIL(slides []Slide, layout Layout) []byte {
	w, h := layout.Width, layout.Height
	if w <= 0 || h <= 0 {
		w, h = 320, 480
	}
	slideDur := layout.SlideDur
	if slideDur <= 0 {
		slideDur = DefaultSlideDur
	}
	mediaDur := layout.MediaDur
	if mediaDur <= 0 {
		mediaDur = DefaultMediaDur
	}
	hasImage, hasText := false, false
	for _, s := range slides {
		if s.Media != "" && visual(s.ContentType) {
			hasImage = true
		}
		if s.Text != "" {
			hasText = true
		}
	}

	var b bytes.Buffer
	b.WriteString("<smil>\n<head>\n<layout>\n")
	fmt.Fprintf(&b, "<root-layout width=\"%d\" height=\"%d\"/>\n", w, h)
	imgH := h
	if hasText {
		imgH = h * 2 / 3
	}
	if hasImage {
		fmt.Fprintf(&b, "<region id=\"Image\" left=\"0\" top=\"0\" width=\"%d\" height=\"%d\" fit=\"meet\"/>\n", w, imgH)
	}
	if hasText {
		top := 0
		if hasImage {
			top = imgH
		}
		fmt.Fprintf(&b, "<region id=\"Text\" left=\"0\" top=\"%d\" width=\"%d\" height=\"%d\" fit=\"scroll\"/>\n", top, w, h-top)
	}
	b.WriteString("</layout>\n</head>\n<body>\n")
	for _, s := range slides {
		dur := s.Dur
		kind := mediaElem(s.ContentType)
		if dur <= 0 {
			dur = slideDur
			if s.Media != "" && (kind == "audio" || kind == "video") {
				dur = mediaDur
			}
		}
		fmt.Fprintf(&b, "<par dur=\"%sms\">\n", strconv.FormatInt(dur.Milliseconds(), 10))
		if s.Media != "" {
			b.WriteString("<" + kind + " src=\"")
			xml.EscapeText(&b, []byte(s.Media))
			b.WriteString("\"")
			if kind == "img" || kind == "video" {
				b.WriteString(" region=\"Image\"")
			}
			b.WriteString("/>\n")
		}
		if s.Text != "" {
			b.WriteString("<text src=\"")
			xml.EscapeText(&b, []byte(s.Text))
			b.WriteString("\" region=\"Text\"/>\n")
		}
		b.WriteString("</par>\n")
	}
	b.WriteString("</body>\n</smil>\n")
	return b.Bytes()
}

func mediaElem(ct string) string {
	major, _, _ := strings.Cut(strings.ToLower(ct), "/")
	switch major {
	case "image":
		return "img"
	case "audio":
		return "audio"
	case "video":
		return "video"
	case "text":
		return "text"
	}
	return "ref"
}

func visual(ct string) bool {
	k := mediaElem(ct)
	return k == "img" || k == "video"
}

// extByType is the canonical extension of the media types an MMS carries,
// followed by other extensions accepted for the type.
var extByType = map[string][]string{
	"image/jpeg":                      {".jpg", ".jpeg", ".jpe"},
	"image/jpg":                       {".jpg", ".jpeg"},
	"image/pjpeg":                     {".jpg", ".jpeg"},
	"image/png":                       {".png"},
	"image/gif":                       {".gif"},
	"image/bmp":                       {".bmp"},
	"image/vnd.wap.wbmp":              {".wbmp"},
	"image/webp":                      {".webp"},
	"image/heic":                      {".heic"},
	"image/heif":                      {".heif"},
	"image/tiff":                      {".tif", ".tiff"},
	"image/svg+xml":                   {".svg"},
	"audio/amr":                       {".amr"},
	"audio/amr-wb":                    {".awb"},
	"audio/mpeg":                      {".mp3"},
	"audio/mp3":                       {".mp3"},
	"audio/mp4":                       {".m4a", ".mp4"},
	"audio/aac":                       {".aac"},
	"audio/ogg":                       {".ogg", ".oga"},
	"audio/wav":                       {".wav"},
	"audio/x-wav":                     {".wav"},
	"audio/midi":                      {".mid", ".midi"},
	"audio/3gpp":                      {".3gp"},
	"video/3gpp":                      {".3gp"},
	"video/3gpp2":                     {".3g2"},
	"video/mp4":                       {".mp4", ".m4v"},
	"video/quicktime":                 {".mov"},
	"video/mpeg":                      {".mpg", ".mpeg"},
	"video/webm":                      {".webm"},
	"text/plain":                      {".txt"},
	"text/html":                       {".html", ".htm"},
	"text/x-vcard":                    {".vcf"},
	"text/vcard":                      {".vcf"},
	"text/directory":                  {".vcf"},
	"text/calendar":                   {".ics"},
	"text/x-vcalendar":                {".vcs"},
	"text/csv":                        {".csv"},
	"application/smil":                {".smil", ".smi"},
	"application/pdf":                 {".pdf"},
	"application/zip":                 {".zip"},
	"application/vnd.wap.mms-message": {".mms"},
}

// NameHint is what UniqueNames knows of a part.
type NameHint struct {
	Name        string // file name as given: any text, may be empty or hold a path
	ContentType string // media type, "image/jpeg"
}

const maxStem = 40

// UniqueNames returns a Content-Location name for each part: ASCII letters,
// digits, '.', '-' and '_' only, without a path, with the extension of its
// content type ("photo.jpg", "text.txt"), and unique within the message
// regardless of case ("image.jpg", "image-2.jpg"). Accents are dropped
// ("ciële" → "ciele"); a name with nothing usable left is replaced by the
// kind of part ("image", "audio", "video", "text", "file").
func UniqueNames(parts []NameHint) []string {
	out := make([]string, len(parts))
	used := map[string]bool{}
	for i, p := range parts {
		stem, ext := safeName(p.Name, p.ContentType)
		name := stem + ext
		for n := 2; used[strings.ToLower(name)]; n++ {
			name = stem + "-" + strconv.Itoa(n) + ext
		}
		used[strings.ToLower(name)] = true
		out[i] = name
	}
	return out
}

// ContentID returns the Content-ID value for a part named by UniqueNames,
// "<image.jpg>".
func ContentID(name string) string {
	return "<" + name + ">"
}

func safeName(name, ct string) (stem, ext string) {
	ct = strings.ToLower(strings.TrimSpace(ct))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	s := asciiFold(name)
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		stem, ext = s[:i], strings.ToLower(s[i:])
	} else {
		stem = s
	}
	if exts, ok := extByType[ct]; ok {
		keep := false
		for _, e := range exts {
			if e == ext {
				keep = true
			}
		}
		if !keep {
			if ext != "" && len(ext) <= 5 && stem != "" && !knownExt(ext) {
				// "report.v2" stays "report.v2.pdf"
				stem += ext
			}
			ext = exts[0]
		}
	} else if len(ext) > 6 || len(ext) < 2 {
		stem, ext = stem+ext, ""
	}
	stem = strings.Trim(stem, ".-_")
	if len(stem) > maxStem {
		stem = strings.TrimRight(stem[:maxStem], ".-_")
	}
	if stem == "" {
		stem = kindOf(ct)
	}
	return stem, ext
}

func knownExt(ext string) bool {
	for _, l := range extByType {
		for _, e := range l {
			if e == ext {
				return true
			}
		}
	}
	return false
}

func kindOf(ct string) string {
	major, _, _ := strings.Cut(ct, "/")
	switch major {
	case "image", "audio", "video", "text":
		return major
	}
	return "file"
}

// asciiFold maps s to [A-Za-z0-9._-]: accents are removed, spaces and
// other characters become '-', runs of '-' collapse.
func asciiFold(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFKD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_'):
			b.WriteRune(r)
			dash = false
		case r == '-' || r < 0x80 && (unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r)):
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		default:
			// Non-Latin letters have no ASCII form: drop them.
		}
	}
	return strings.Trim(b.String(), "-")
}
