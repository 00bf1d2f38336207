// Parsing an email into the parts an MMS is made of.
//
// Design note: the relay must take whatever real mail clients and gateways
// send, and the corpus shows how broken that can be: bad boundaries, header
// lines that lost their folding whitespace, base64 with junk in it, charsets
// nobody knows. The whole message is therefore read into memory first (it is
// bounded by EmailOptions.MaxSize, and the media end up in memory anyway),
// and the MIME tree is walked over that byte slice with a lenient splitter of
// our own (package mimesplit, shared with the MM4 reader). go-message does
// the field-level work: textproto parses the (repaired) header blocks,
// message.Header parses Content-Type and Content-Disposition (RFC 2231),
// mail.Header the Date and message ids, and go-message/charset decodes every
// legacy charset. Anything that cannot be read is skipped and described in
// Email.Notes; only an oversized input is an error.

package mapping

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/mmsrelay/mmsrelay/mapping/internal/mimesplit"
)

// ErrTooLarge is returned (wrapped) by ParseEmail when the input or one of its
// header blocks exceeds the configured limits.
var ErrTooLarge = errors.New("mapping: email too large")

// Default limits of EmailOptions.
const (
	DefaultMaxSize        = 32 << 20
	DefaultMaxHeaderBytes = 256 << 10
	DefaultMaxParts       = 256
	DefaultMaxDepth       = 16
)

// EmailOptions controls ParseEmail. The zero value is ready to use.
type EmailOptions struct {
	// MaxSize bounds the whole input in bytes; larger input fails with
	// ErrTooLarge. Zero means DefaultMaxSize.
	MaxSize int64

	// MaxHeaderBytes bounds each header block; a larger one fails with
	// ErrTooLarge. Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int

	// MaxParts bounds the number of MIME entities read; the rest are
	// skipped with a note. Zero means DefaultMaxParts.
	MaxParts int

	// MaxDepth bounds the nesting of multiparts and attached messages;
	// deeper entities are skipped with a note. Zero means DefaultMaxDepth.
	MaxDepth int

	// KeepHistory turns off StripHistory: Email.Text then holds the whole
	// body text, quoted replies and signature included.
	KeepHistory bool
}

func (o EmailOptions) withDefaults() EmailOptions {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxParts <= 0 {
		o.MaxParts = DefaultMaxParts
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	return o
}

// Priority is the sender's priority of a message.
type Priority int8

// Priorities, from X-Priority, Importance or Priority. The zero value is
// PriorityNormal, the meaning of no such header.
const (
	PriorityNormal Priority = iota
	PriorityLow
	PriorityHigh
)

var priorityNames = [...]string{PriorityNormal: "normal", PriorityLow: "low", PriorityHigh: "high"}

// String returns "low", "normal" or "high".
func (p Priority) String() string {
	if int(p) >= 0 && int(p) < len(priorityNames) {
		return priorityNames[p]
	}
	return fmt.Sprintf("Priority(%d)", int(p))
}

// Attachment is one media object of an email: an attachment, an inline
// image, or a text part that is not the body (a .vcf, .ics or .txt file).
type Attachment struct {
	Name        string // file name as given (UTF-8, may be empty or hold a path)
	ContentType string // lower-case media type without parameters, "image/jpeg"
	Data        []byte // decoded content; text/* parts keep their charset
	ContentID   string // Content-ID without angle brackets, may be empty
	Inline      bool   // shown in the body (disposition inline or cid: reference)
}

// Email is what ParseEmail reads from a message: the envelope-ish header
// fields, the body text in UTF-8 and the media in document order. It holds
// no reference to the input.
type Email struct {
	From    *mail.Address // nil if missing or unreadable
	To      []string      // addr-specs, "+15551234567@mms.example.net"
	Cc      []string
	Bcc     []string
	Subject string    // decoded (RFC 2047, RFC 6532), UTF-8
	Date    time.Time // zero if missing or unreadable

	MessageID  string   // without angle brackets
	InReplyTo  []string // without angle brackets
	References []string // without angle brackets

	Priority Priority

	// ReadReportTo is the Disposition-Notification-To address: the sender
	// asks for a read report. ReturnReceiptTo is the legacy
	// Return-Receipt-To address: a delivery report was asked for.
	ReadReportTo    string
	ReturnReceiptTo string

	// Text is the body text in UTF-8 with normalised whitespace and, unless
	// EmailOptions.KeepHistory, without quoted history and signature.
	// Forwarded messages (message/rfc822 parts) follow it, each after a
	// "---------- Forwarded message ----------" line.
	Text string

	// FullText is Text before StripHistory.
	FullText string

	Media []Attachment

	// Notes describe what could not be read (bad encodings, unknown
	// charsets, skipped parts). Empty for a well-formed message.
	Notes []string
}

// ParseEmail reads an RFC 5322 message from r and returns its content.
// Malformed MIME degrades gracefully: whatever can be read is returned and
// the rest is described in Email.Notes. The only errors are reading r, and
// ErrTooLarge when the input or a header block exceeds opts' limits.
func ParseEmail(r io.Reader, opts EmailOptions) (*Email, error) {
	opts = opts.withDefaults()
	raw, err := io.ReadAll(io.LimitReader(r, opts.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("mapping: reading email: %w", err)
	}
	return ParseEmailBytes(raw, opts)
}

// ParseEmailBytes is ParseEmail for a message already in memory, without
// a copy. The Data of a part sent without a transfer encoding (7bit, 8bit,
// binary) aliases raw: raw must not change while the Email is in use.
func ParseEmailBytes(raw []byte, opts EmailOptions) (*Email, error) {
	opts = opts.withDefaults()
	if int64(len(raw)) > opts.MaxSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, opts.MaxSize)
	}
	p := &parser{opts: opts}
	raw = skipMboxLine(raw)
	h, body, err := p.splitEntity(raw)
	if err != nil {
		return nil, err
	}
	e := &Email{}
	p.readHeader(e, h)
	var c content
	p.entity(&c, h, body, 0)
	if p.tooLarge != nil {
		return nil, p.tooLarge
	}
	main := joinText(c.texts(false))
	e.FullText = NormalizeText(main)
	e.Text = e.FullText
	if !opts.KeepHistory {
		e.Text = StripHistory(main)
	}
	if fw := joinText(c.texts(true)); fw != "" {
		fw = NormalizeText(fw)
		if e.Text != "" {
			e.Text += "\n\n" + fw
			e.FullText += "\n\n" + fw
		} else {
			e.Text, e.FullText = fw, fw
		}
	}
	e.Media = c.media
	e.Notes = p.notes
	return e, nil
}

// parser holds the state of one ParseEmail call.
type parser struct {
	opts     EmailOptions
	parts    int
	notes    []string
	tooLarge error
}

func (p *parser) notef(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if len(p.notes) >= 100 || slices.Contains(p.notes, n) {
		return
	}
	p.notes = append(p.notes, n)
}

// textSeg is a piece of body text.
type textSeg struct {
	text      string
	html      bool     // converted from HTML
	forwarded bool     // from an attached message
	cids      []string // cid: references of the HTML, in order
}

// content accumulates the text and media of an entity in document order.
type content struct {
	segs  []textSeg
	media []Attachment
}

func (c *content) texts(forwarded bool) []string {
	var l []string
	for _, s := range c.segs {
		if s.forwarded == forwarded {
			l = append(l, s.text)
		}
	}
	return l
}

func (c *content) hasText(html bool) bool {
	for _, s := range c.segs {
		if s.html == html && strings.TrimSpace(s.text) != "" {
			return true
		}
	}
	return false
}

func (c *content) add(o *content) {
	c.segs = append(c.segs, o.segs...)
	c.media = append(c.media, o.media...)
}

func joinText(l []string) string {
	var parts []string
	for _, s := range l {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "\n\n")
}

// skipMboxLine drops a leading mbox "From " separator line, and the
// whitespace some tools leave before the first header.
func skipMboxLine(b []byte) []byte {
	if bytes.HasPrefix(b, []byte("From ")) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line := b[:i]
			if !bytes.Contains(line[:min(len(line), 40)], []byte(":")) || bytes.Count(line, []byte(":")) >= 2 {
				b = b[i+1:]
			}
		}
	}
	return bytes.TrimLeft(b, " \t")
}

// splitEntity splits an entity into its parsed header and its raw body. The
// header block is repaired first (see repairHeader).
func (p *parser) splitEntity(b []byte) (message.Header, []byte, error) {
	hb, body := mimesplit.Entity(b)
	if len(hb) > p.opts.MaxHeaderBytes {
		return message.Header{}, nil, fmt.Errorf("%w: header block of more than %d bytes", ErrTooLarge, p.opts.MaxHeaderBytes)
	}
	fixed, bad := repairHeader(hb)
	if bad > 0 {
		p.notef("skipped %d malformed header line(s)", bad)
	}
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(fixed)))
	if err != nil {
		p.notef("header: %v", err)
	}
	return message.Header{Header: th}, body, nil
}

// repairHeader rewrites a header block so that textproto.ReadHeader accepts
// it: lines without a colon that follow a field are taken as continuation
// lines (their folding whitespace was lost), other lines that are not
// "Key: value" are dropped and counted. The result ends with a blank line.
func repairHeader(hb []byte) ([]byte, int) {
	var out bytes.Buffer
	bad := 0
	have := false
	for len(hb) > 0 {
		var line []byte
		line, hb, _ = bytes.Cut(hb, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		switch {
		case line[0] == ' ' || line[0] == '\t':
			if !have {
				bad++
				continue
			}
		default:
			k, _, ok := bytes.Cut(line, []byte(":"))
			if ok && mimesplit.ValidKey(bytes.TrimRight(k, " \t")) {
				have = true
				break
			}
			if !have {
				bad++
				continue
			}
			// Lost folding: continue the previous field.
			out.WriteByte(' ')
		}
		out.Write(line)
		out.WriteString("\r\n")
	}
	out.WriteString("\r\n")
	return out.Bytes(), bad
}

// readHeader fills in the header fields of e.
func (p *parser) readHeader(e *Email, h message.Header) {
	mh := gomail.Header{Header: h}
	if l := p.addresses(h, "From"); len(l) > 0 {
		e.From = l[0]
	}
	for _, f := range []struct {
		key string
		dst *[]string
	}{{"To", &e.To}, {"Cc", &e.Cc}, {"Bcc", &e.Bcc}} {
		for _, a := range p.addresses(h, f.key) {
			*f.dst = append(*f.dst, a.Address)
		}
	}
	e.Subject = decodeWords(h.Get("Subject"))
	if v := h.Get("Date"); v != "" {
		d, err := mh.Date()
		if err != nil {
			d, err = parseDateLenient(v)
		}
		if err != nil {
			p.notef("unreadable Date %q", v)
		}
		e.Date = d
	}
	e.MessageID = firstOr(msgIDs(h.Get("Message-Id")), "")
	e.InReplyTo = msgIDs(h.Get("In-Reply-To"))
	e.References = msgIDs(strings.Join(h.Values("References"), " "))
	e.Priority = priority(h)
	if l := p.addresses(h, "Disposition-Notification-To"); len(l) > 0 {
		e.ReadReportTo = l[0].Address
	}
	if l := p.addresses(h, "Return-Receipt-To"); len(l) > 0 {
		e.ReturnReceiptTo = l[0].Address
	}
}

func firstOr(l []string, def string) string {
	if len(l) > 0 {
		return l[0]
	}
	return def
}

// addresses parses all the fields named key as address lists. Entries that
// net/mail cannot read are recovered by looking for an addr-spec in them.
func (p *parser) addresses(h message.Header, key string) []*mail.Address {
	var out []*mail.Address
	ap := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader}}
	for _, v := range h.Values(key) {
		v = strings.TrimSpace(toUTF8Header(v))
		if v == "" {
			continue
		}
		if l, err := ap.ParseList(v); err == nil {
			out = append(out, l...)
			continue
		}
		for _, item := range splitAddressList(v) {
			if a, err := ap.Parse(item); err == nil {
				out = append(out, a)
			} else if a := salvageAddress(item); a != nil {
				out = append(out, a)
			} else if strings.TrimSpace(item) != "" {
				p.notef("unreadable address %q in %s", item, key)
			}
		}
	}
	return out
}

// splitAddressList splits at commas outside quotes, comments and angle
// brackets.
func splitAddressList(v string) []string {
	var l []string
	depth, angle, quoted, start := 0, false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			angle = true // angle brackets do not nest
		case c == '>':
			angle = false
		case c == '(':
			depth++
		case c == ')':
			if depth > 0 {
				depth--
			}
		case c == ',' && depth == 0 && !angle:
			l = append(l, v[start:i])
			start = i + 1
		}
	}
	return append(l, v[start:])
}

// salvageAddress finds an addr-spec in a malformed address.
func salvageAddress(s string) *mail.Address {
	s = strings.TrimSpace(s)
	name := ""
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			name = strings.Trim(strings.TrimSpace(s[:i]), `"`)
			s = s[i+1 : i+j]
		}
	}
	for _, f := range strings.Fields(s) {
		f = strings.Trim(f, `"'<>,;()`)
		if strings.HasSuffix(strings.ToLower(f), plmnSuffix) { // "+15551234567/TYPE=PLMN"
			return &mail.Address{Name: decodeWords(name), Address: f}
		}
		if i := strings.LastIndexByte(f, '@'); i > 0 && i < len(f)-1 {
			return &mail.Address{Name: decodeWords(name), Address: f}
		}
	}
	return nil
}

var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon, 2 Jan 2006 15:04:05",
	"2006-01-02 15:04:05 -0700",
	time.RFC3339,
}

func parseDateLenient(v string) (time.Time, error) {
	v = strings.Join(strings.Fields(v), " ")
	if i := strings.IndexByte(v, '('); i > 0 { // trailing comment
		v = strings.TrimSpace(v[:i])
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("unreadable date")
}

// msgIDs returns the message ids in v without angle brackets. A value
// without any "<id>" is taken as whitespace-separated ids.
func msgIDs(v string) []string {
	var l []string
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(rest[i+1 : i+j]); id != "" {
			l = append(l, id)
		}
		rest = rest[i+j+1:]
	}
	if len(l) == 0 {
		for _, f := range strings.Fields(v) {
			if strings.Contains(f, "@") {
				l = append(l, f)
			}
		}
	}
	return l
}

func priority(h message.Header) Priority {
	if v := strings.TrimSpace(h.Get("X-Priority")); v != "" {
		switch v[0] {
		case '1', '2':
			return PriorityHigh
		case '4', '5':
			return PriorityLow
		case '3':
			return PriorityNormal
		}
	}
	for _, k := range []string{"Importance", "Priority", "X-Msmail-Priority"} {
		v := strings.ToLower(strings.TrimSpace(h.Get(k)))
		switch {
		case v == "":
			continue
		case v == "high" || v == "urgent":
			return PriorityHigh
		case v == "low" || v == "non-urgent":
			return PriorityLow
		default:
			return PriorityNormal
		}
	}
	return PriorityNormal
}

// entity reads one MIME entity (header h, raw body) into c.
func (p *parser) entity(c *content, h message.Header, body []byte, depth int) {
	if p.tooLarge != nil {
		return
	}
	if p.parts >= p.opts.MaxParts {
		p.notef("more than %d MIME parts: the rest skipped", p.opts.MaxParts)
		return
	}
	p.parts++
	ctRaw := h.Get("Content-Type")
	ct, params := mediaType(ctRaw)
	if ct == "" || !strings.Contains(ct, "/") {
		if ctRaw != "" {
			p.notef("unreadable Content-Type %q, read as text/plain", ctRaw)
		}
		ct = "text/plain"
	}
	disp, dparams := mediaType(h.Get("Content-Disposition"))

	if strings.HasPrefix(ct, "multipart/") {
		if depth >= p.opts.MaxDepth {
			p.notef("%s nested deeper than %d: skipped", ct, p.opts.MaxDepth)
			return
		}
		boundary := params["boundary"]
		if boundary == "" {
			p.notef("%s without boundary, read as text", ct)
			p.leaf(c, "text/plain", params, disp, dparams, h, body)
			return
		}
		p.multipart(c, ct, params, boundary, body, depth)
		return
	}
	if ct == "message/rfc822" || ct == "message/global" {
		if depth >= p.opts.MaxDepth {
			p.notef("attached message nested deeper than %d: skipped", p.opts.MaxDepth)
			return
		}
		data := p.decodeTransfer(h, body)
		p.forward(c, data, depth)
		return
	}
	p.leaf(c, ct, params, disp, dparams, h, body)
}

// forward reads an attached message: its text goes after a short header,
// its media are added.
func (p *parser) forward(c *content, data []byte, depth int) {
	h, body, err := p.splitEntity(skipMboxLine(data))
	if err != nil {
		p.tooLarge = err
		return
	}
	var fe Email
	p.readHeader(&fe, h)
	var sub content
	p.entity(&sub, h, body, depth+1)
	var hdr strings.Builder
	hdr.WriteString("---------- Forwarded message ----------")
	if fe.From != nil {
		hdr.WriteString("\nFrom: " + formatAddress(fe.From))
	}
	if !fe.Date.IsZero() {
		hdr.WriteString("\nDate: " + fe.Date.Format("Mon, 2 Jan 2006 15:04"))
	}
	if fe.Subject != "" {
		hdr.WriteString("\nSubject: " + fe.Subject)
	}
	// A forward keeps its content: no StripHistory here.
	text := joinText(sub.texts(false))
	c.segs = append(c.segs, textSeg{text: hdr.String() + "\n\n" + text, forwarded: true})
	for _, s := range sub.segs {
		if s.forwarded { // messages forwarded within the forward
			c.segs = append(c.segs, s)
		}
	}
	c.media = append(c.media, sub.media...)
}

func formatAddress(a *mail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	return a.Name + " <" + a.Address + ">"
}

func (p *parser) multipart(c *content, ct string, params map[string]string, boundary string, body []byte, depth int) {
	parts, note := splitMultipart(body, boundary)
	if note != "" {
		p.notef("%s: %s", ct, note)
	}
	if parts == nil {
		// Not a single boundary: read the body as text rather than lose it.
		p.leaf(c, "text/plain", nil, "", nil, message.Header{}, body)
		return
	}
	type sub struct {
		h message.Header
		c content
	}
	var subs []sub
	for i, raw := range parts {
		if p.parts >= p.opts.MaxParts {
			p.notef("more than %d MIME parts: the rest skipped", p.opts.MaxParts)
			break
		}
		h, b, err := p.splitEntity(raw)
		if err != nil {
			p.tooLarge = err
			return
		}
		if ct == "multipart/signed" && i > 0 {
			continue // the signature
		}
		if ct == "multipart/appledouble" {
			if t, _ := mediaType(h.Get("Content-Type")); t == "application/applefile" {
				continue
			}
		}
		var sc content
		p.entity(&sc, h, b, depth+1)
		subs = append(subs, sub{h, sc})
	}
	switch ct {
	case "multipart/alternative":
		best := -1
		for _, html := range []bool{false, true} {
			for i := range subs {
				if subs[i].c.hasText(html) {
					best = i
					break
				}
			}
			if best >= 0 {
				break
			}
		}
		if best < 0 {
			// No text at all: take the last (richest) non-empty one.
			for i := len(subs) - 1; i >= 0 && best < 0; i-- {
				if len(subs[i].c.media) > 0 {
					best = i
				}
			}
		}
		if best < 0 {
			return
		}
		c.add(&subs[best].c)
		if len(subs[best].c.media) == 0 {
			// Images pasted into the HTML alternative are content too.
			for i := len(subs) - 1; i >= 0; i-- {
				if len(subs[i].c.media) > 0 {
					c.media = append(c.media, subs[i].c.media...)
					break
				}
			}
		}
	case "multipart/related":
		var all content
		for i := range subs {
			all.add(&subs[i].c)
		}
		// Order the related media by their first cid: reference in the
		// HTML, so slides follow the document; referenced ones are inline.
		refs := cidOrder(all.segs)
		if len(refs) > 0 {
			sort.SliceStable(all.media, func(i, j int) bool {
				return refRank(refs, all.media[i].ContentID) < refRank(refs, all.media[j].ContentID)
			})
			for i := range all.media {
				if _, ok := refs[all.media[i].ContentID]; ok {
					all.media[i].Inline = true
				}
			}
		}
		c.add(&all)
	default:
		for i := range subs {
			c.add(&subs[i].c)
		}
	}
}

// cidOrder maps each Content-ID referenced as cid: by the HTML of segs to
// the rank of its first reference.
func cidOrder(segs []textSeg) map[string]int {
	m := map[string]int{}
	for _, s := range segs {
		for _, id := range s.cids {
			if _, ok := m[id]; !ok {
				m[id] = len(m)
			}
		}
	}
	return m
}

func refRank(refs map[string]int, id string) int {
	if r, ok := refs[id]; ok {
		return r
	}
	return len(refs)
}

// splitMultipart splits a multipart body at its boundary lines (see
// mimesplit.Multipart) and says what was wrong with it: no boundary line
// (nil parts) or no close delimiter.
func splitMultipart(body []byte, boundary string) (parts [][]byte, note string) {
	parts, closed := mimesplit.Multipart(body, boundary)
	switch {
	case parts == nil:
		return nil, "no boundary line found"
	case !closed:
		// An unterminated last part of whitespace only is none.
		if len(parts) > 0 && len(bytes.TrimSpace(parts[len(parts)-1])) == 0 {
			parts = parts[:len(parts)-1]
		}
		return parts, "missing closing boundary"
	}
	return parts, ""
}

// leaf reads a single-part entity: body text or media.
func (p *parser) leaf(c *content, ct string, params map[string]string, disp string, dparams map[string]string, h message.Header, body []byte) {
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	if name == "" {
		if loc := strings.TrimSpace(h.Get("Content-Location")); loc != "" {
			name = path.Base(loc)
		}
	}
	if name == "." || name == "/" {
		name = ""
	}
	data := p.decodeTransfer(h, body)
	isText := ct == "text/plain" || ct == "text/html" || ct == "text/enriched"
	if isText && disp != "attachment" {
		s := p.decodeText(data, params["charset"], ct == "text/html")
		if ct == "text/html" {
			text, cids := htmlToText(s)
			c.segs = append(c.segs, textSeg{text: text, html: true, cids: cids})
		} else {
			if strings.EqualFold(params["format"], "flowed") {
				s = unflow(s, strings.EqualFold(params["delsp"], "yes"))
			}
			c.segs = append(c.segs, textSeg{text: s})
		}
		return
	}
	cid := strings.TrimSpace(h.Get("Content-Id"))
	cid = strings.TrimSuffix(strings.TrimPrefix(cid, "<"), ">")
	c.media = append(c.media, Attachment{
		Name:        name,
		ContentType: ct,
		Data:        data,
		ContentID:   cid,
		Inline:      disp == "inline",
	})
}
