// The MMS → email direction: a received MMS becomes the content of a reply
// email.
//
// Design note: an MMS reaches the relay in three shapes, a binary PDU
// (M-Retrieve.conf or M-Send.req), an MM4_forward.REQ, and an MM3 carrier
// email (a plain MIME message from "15551234567@mms.att.net", sometimes
// holding the binary PDU as an application/vnd.wap.mms-message part). The
// MMSFrom* constructors turn each into one model, MMS, whose Parts are the
// MMS parts as sent. Normalize then makes them presentable: parts are put in
// SMIL order, every text part is decoded to UTF-8 (UCS-2 and UTF-16
// included, a leading BOM removed), HTML becomes text, the carrier's
// boilerplate (CarrierRules) is removed, and the SMIL and empty parts are
// dropped. ToEmail writes the result as a flat multipart/mixed email: one
// text/plain body, then the media as attachments.
//
// MM3 mail needs one decision that the other shapes do not: which branch of
// a multipart/alternative carries the person's words. Carriers often put a
// "view this in a graphical mail program" line in the text/plain branch
// and the words in the HTML, or the other way round; so the text/plain
// branch is taken unless nothing is left of it once the carrier's
// boilerplate is removed, and the HTML branch then.

package mapping

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
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
	gomail "github.com/emersion/go-message/mail"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// MMS is a received multimedia message, whatever shape it came in.
type MMS struct {
	// From is the sender as sent: "+15551234567/TYPE=PLMN",
	// "15551234567@mms.att.net" or "Name <addr>".
	From string
	// To and Cc are the recipients as sent.
	To, Cc    []string
	Subject   string // UTF-8
	Date      time.Time
	MessageID string // without angle brackets

	// Parts are the MMS parts in the order received. Bodies may alias the
	// input the MMS was made from. After Normalize, text parts are UTF-8
	// text/plain.
	Parts []pdu.Part
}

// MMSFromPDU returns the MMS of an M-Retrieve.conf or M-Send.req. The
// parts alias m's; a PDU whose body is not multipart gives one part.
func MMSFromPDU(m *pdu.Message) *MMS {
	out := &MMS{Subject: m.Subject.String(), Date: m.Date, MessageID: m.MessageID}
	if m.From != nil && !m.From.Insert {
		out.From = m.From.Address.String()
	}
	for _, a := range m.To {
		out.To = append(out.To, a.String())
	}
	for _, a := range m.Cc {
		out.Cc = append(out.Cc, a.String())
	}
	if len(m.Parts) > 0 {
		out.Parts = m.Parts
	} else if len(m.Body) > 0 {
		out.Parts = []pdu.Part{{ContentType: m.ContentType, Body: m.Body}}
	}
	return out
}

// MMSFromMM4 returns the MMS of an MM4_forward.REQ. The error is that of
// reading its MIME body.
func MMSFromMM4(m *mm4.Message) (*MMS, error) {
	out := &MMS{From: m.From, To: m.To, Cc: m.Cc, Subject: m.Subject, Date: m.Date, MessageID: m.MessageID}
	if out.MessageID == "" {
		out.MessageID = firstOr(msgIDs(m.Header.Get("Message-Id")), "")
	}
	_, parts, err := m.Parts(mm4.Limits{})
	if err != nil {
		return nil, fmt.Errorf("mapping: reading the MM4 body: %w", err)
	}
	// A binary PDU carried as a part stands for its own parts.
	for _, p := range parts {
		if strings.EqualFold(p.ContentType.Type, "application/vnd.wap.mms-message") {
			if inner, err := (pdu.Decoder{}).Decode(p.Body); err == nil {
				if out.Subject == "" {
					out.Subject = inner.Subject.String()
				}
				out.Parts = append(out.Parts, MMSFromPDU(inner).Parts...)
				continue
			}
		}
		out.Parts = append(out.Parts, p)
	}
	return out, nil
}

// ErrNotEmail is returned by MMSFromEmail for input without a header block.
var ErrNotEmail = errors.New("mapping: not an email")

// MMSFromEmail returns the MMS of an MM3 carrier email, with the default
// carrier rules (see MMSFromEmailRules).
func MMSFromEmail(raw []byte) (*MMS, error) {
	return MMSFromEmailRules(raw, nil)
}

// MMSFromEmailRules returns the MMS of an MM3 carrier email read leniently
// (as ParseEmail does): the header fields, and the leaf parts of its MIME
// tree in order, transfer encodings undone, text decoded to UTF-8 and HTML
// made text. Of a multipart/alternative only one text branch is kept (see
// the note atop this file), judged with rules (nil: DefaultCarrierRules).
// A part of type application/vnd.wap.mms-message is decoded as a PDU and
// replaced by the PDU's parts. Part bodies may alias raw.
func MMSFromEmailRules(raw []byte, rules *CarrierRules) (*MMS, error) {
	if rules == nil {
		rules = DefaultCarrierRules()
	}
	opts := EmailOptions{}.withDefaults()
	if int64(len(raw)) > opts.MaxSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, opts.MaxSize)
	}
	p := &parser{opts: opts}
	raw = skipMboxLine(bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")))
	h, body, err := p.splitEntity(raw)
	if err != nil {
		return nil, err
	}
	if h.Len() == 0 {
		return nil, ErrNotEmail
	}
	var e Email
	p.readHeader(&e, h)
	m := &MMS{To: e.To, Cc: e.Cc, Subject: e.Subject, Date: e.Date, MessageID: e.MessageID}
	if e.From != nil {
		m.From = e.From.Address
	}
	w := &mm3Walker{p: p, rule: rules.For(m.From)}
	m.Parts = w.entity(h, body, 0)
	if m.Subject == "" && w.pduSubject != "" {
		m.Subject = w.pduSubject
	}
	if p.tooLarge != nil {
		return nil, p.tooLarge
	}
	return m, nil
}

// mm3Walker flattens the MIME tree of an MM3 email into MMS parts.
type mm3Walker struct {
	p          *parser
	rule       *carrierRule
	pduSubject string
}

func (w *mm3Walker) entity(h message.Header, body []byte, depth int) []pdu.Part {
	p := w.p
	if p.tooLarge != nil || p.parts >= p.opts.MaxParts || depth > p.opts.MaxDepth {
		return nil
	}
	p.parts++
	ct, params := mediaType(h.Get("Content-Type"))
	if ct == "" || !strings.Contains(ct, "/") {
		ct = "text/plain"
	}
	if strings.HasPrefix(ct, "multipart/") && params["boundary"] != "" {
		raws, _ := splitMultipart(body, params["boundary"])
		if raws == nil {
			return w.leaf(message.Header{}, "text/plain", nil, body)
		}
		var subs [][]pdu.Part
		for _, r := range raws {
			sh, sb, err := p.splitEntity(r)
			if err != nil {
				p.tooLarge = err
				return nil
			}
			if t, _ := mediaType(sh.Get("Content-Type")); t == "application/applefile" {
				continue
			}
			subs = append(subs, w.entity(sh, sb, depth+1))
		}
		if ct == "multipart/alternative" && !w.rule.DropHTMLText {
			return w.alternative(subs)
		}
		if ct == "multipart/signed" && len(subs) > 1 {
			subs = subs[:1]
		}
		var out []pdu.Part
		for _, s := range subs {
			out = append(out, s...)
		}
		return out
	}
	if ct == "message/rfc822" || ct == "message/global" {
		sh, sb, err := p.splitEntity(p.decodeTransfer(h, body))
		if err != nil {
			p.tooLarge = err
			return nil
		}
		return w.entity(sh, sb, depth+1)
	}
	return w.leaf(h, ct, params, body)
}

// alternative keeps the media of every branch and the text of one: the
// first whose text/plain survives the boilerplate rules, else the first
// with any text that does.
func (w *mm3Walker) alternative(subs [][]pdu.Part) []pdu.Part {
	best := -1
	for _, wantHTML := range []bool{false, true} {
		for i, s := range subs {
			if best < 0 && hasText(s, wantHTML) && w.rule.cleanText(joinParts(s)) != "" {
				best = i
			}
		}
	}
	var out []pdu.Part
	for i, s := range subs {
		for _, pt := range s {
			if pt.ContentType.Type != "text/plain" || i == best {
				out = append(out, pt)
			}
		}
	}
	return out
}

// fromHTML marks a text/plain part made from HTML.
const fromHTML = "x-from-html"

func hasText(parts []pdu.Part, html bool) bool {
	for _, p := range parts {
		if p.ContentType.Type == "text/plain" && (p.ContentType.Param(fromHTML) != "") == html {
			return true
		}
	}
	return false
}

func joinParts(parts []pdu.Part) string {
	var l []string
	for _, p := range parts {
		if p.ContentType.Type == "text/plain" {
			l = append(l, string(p.Body))
		}
	}
	return strings.Join(l, "\n")
}

func (w *mm3Walker) leaf(h message.Header, ct string, params map[string]string, body []byte) []pdu.Part {
	p := w.p
	disp, dparams := mediaType(h.Get("Content-Disposition"))
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	data := p.decodeTransfer(h, body)
	part := pdu.Part{
		ContentType:     pdu.ContentType{Type: ct},
		ContentID:       strings.TrimSpace(h.Get("Content-Id")),
		ContentLocation: strings.TrimSpace(h.Get("Content-Location")),
		Body:            data,
	}
	switch {
	case ct == "application/vnd.wap.mms-message":
		m, err := pdu.Decoder{}.Decode(data)
		if err != nil {
			p.notef("undecodable MMS PDU part: %v", err)
			return nil
		}
		if w.pduSubject == "" {
			w.pduSubject = m.Subject.String()
		}
		return MMSFromPDU(m).Parts
	case ct == "text/html" && w.rule.DropHTMLText:
		return nil
	case (ct == "text/plain" || ct == "text/html") && disp != "attachment":
		s := p.decodeText(data, params["charset"], ct == "text/html")
		part.ContentType.Params = []pdu.Param{{Name: "charset", Value: "utf-8"}}
		if ct == "text/html" {
			s = HTMLToText(s)
			part.ContentType.Params = append(part.ContentType.Params, pdu.Param{Name: fromHTML, Value: "1"})
		} else if strings.EqualFold(params["format"], "flowed") {
			s = unflow(s, strings.EqualFold(params["delsp"], "yes"))
		}
		part.ContentType.Type = "text/plain"
		part.Body = []byte(s)
	case ct == "application/smil" && params["charset"] != "":
		part.ContentType.Params = []pdu.Param{{Name: "charset", Value: params["charset"]}}
	}
	if name != "" {
		part.ContentType.Params = append(part.ContentType.Params, pdu.Param{Name: "name", Value: name})
	}
	return []pdu.Part{part}
}

// Normalize makes m's parts presentable, in place: parts are put in the
// order of the SMIL presentation (parts it does not name follow, in their
// order), text parts become UTF-8 text/plain (any MMS charset; HTML made
// text; a leading BOM removed), media types are canonical (an
// application/octet-stream part named "x.jpg" is image/jpeg), the
// carrier's boilerplate is removed according to rules (nil:
// DefaultCarrierRules), a subject that is the carrier's is removed, and the SMIL, empty parts and empty texts are
// dropped. Normalizing twice is harmless.
func (m *MMS) Normalize(rules *CarrierRules) {
	if rules == nil {
		rules = DefaultCarrierRules()
	}
	rule := rules.For(m.From)
	m.Subject = rule.cleanSubject(m.Subject)
	parts := smilOrder(m.Parts)
	out := parts[:0:0]
	seen := map[[sha256.Size]byte]string{} // media already kept: content → name
	for _, p := range parts {
		ct := strings.ToLower(p.ContentType.Type)
		switch {
		case ct == "application/smil" || strings.HasPrefix(ct, "application/vnd.wap.multipart"):
			continue
		case ct == "text/plain" || ct == "text/html":
			s := partText(&p)
			if ct == "text/html" && rule.DropHTMLText {
				continue
			}
			if ct == "text/html" {
				s = HTMLToText(s)
			}
			if rule.dropPart(&p, []byte(s)) {
				continue
			}
			s = rule.cleanText(s)
			if s == "" {
				continue
			}
			p.ContentType = pdu.ContentType{Type: "text/plain", Params: []pdu.Param{{Name: "charset", Value: "utf-8"}}}
			if n := p.Name(); n != "" && p.ContentType.Param("name") == "" && ct == "text/plain" {
				p.ContentType.Params = append(p.ContentType.Params, pdu.Param{Name: "name", Value: n})
			}
			p.Body = []byte(s)
		default:
			if len(p.Body) == 0 {
				continue
			}
			p.ContentType.Type = canonicalType(ct, p.Name())
			if rule.dropPart(&p, p.Body) {
				continue
			}
			// The same file twice (an inline copy for the carrier's HTML
			// and the attachment) is kept once.
			sum := sha256.Sum256(p.Body)
			if n, ok := seen[sum]; ok && strings.EqualFold(n, p.Name()) {
				continue
			}
			seen[sum] = p.Name()
		}
		out = append(out, p)
	}
	m.Parts = out
}

// partText decodes a text part to UTF-8 without a leading BOM.
func partText(p *pdu.Part) string {
	s, _ := p.Text()
	if s == "" && !strings.HasPrefix(p.ContentType.Type, "text/") {
		s = pdu.Charset(0).Decode(p.Body)
	}
	return strings.TrimPrefix(s, "\ufeff")
}

// canonicalType fixes the media types handsets and carriers get wrong.
func canonicalType(ct, name string) string {
	switch ct {
	case "image/jpg", "image/pjpeg":
		return "image/jpeg"
	case "audio/x-amr", "audio/amr-nb":
		return "audio/amr"
	case "application/octet-stream", "", "application/x-octet-stream":
		if t := typeByExt(path.Ext(strings.ToLower(name))); t != "" {
			return t
		}
	}
	return ct
}

func typeByExt(ext string) string {
	if ext == "" {
		return ""
	}
	for _, t := range []string{"image/jpeg", "image/png", "image/gif", "audio/amr", "video/3gpp", "video/3gpp2",
		"video/mp4", "audio/mpeg", "text/x-vcard", "image/bmp", "image/webp", "image/heic", "video/quicktime"} {
		if slices.Contains(extByType[t], ext) {
			return t
		}
	}
	return ""
}

// smilOrder returns parts sorted by their first reference in the SMIL
// part, if there is one; unreferenced parts follow in their order.
func smilOrder(parts []pdu.Part) []pdu.Part {
	var refs []string
	for i := range parts {
		if strings.EqualFold(parts[i].ContentType.Type, "application/smil") {
			refs = smilRefs(parts[i].Body)
			break
		}
	}
	out := slices.Clone(parts)
	if len(refs) == 0 {
		return out
	}
	rank := func(p *pdu.Part) int {
		keys := []string{strings.Trim(p.ContentID, "<> "), p.ContentLocation, p.Name()}
		for i, r := range refs {
			r = strings.TrimPrefix(r, "cid:")
			for _, k := range keys {
				if k != "" && strings.EqualFold(k, r) {
					return i
				}
			}
		}
		return len(refs)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(&out[i]) < rank(&out[j]) })
	return out
}

// smilRefs returns the src attributes of a SMIL document's media elements
// in document order. Malformed XML yields what was read before the error.
func smilRefs(b []byte) []string {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var refs []string
	for {
		t, err := d.Token()
		if err != nil {
			return refs
		}
		se, ok := t.(xml.StartElement)
		if !ok {
			continue
		}
		switch strings.ToLower(se.Name.Local) {
		case "img", "text", "audio", "video", "ref", "animation", "textstream":
			for _, a := range se.Attr {
				if strings.EqualFold(a.Name.Local, "src") && a.Value != "" {
					refs = append(refs, a.Value)
				}
			}
		}
	}
}

// EmailOutOptions controls ToEmail.
type EmailOutOptions struct {
	// ReplyDomain is the domain of the From address
	// ("+15551234567@ReplyDomain") and of the new Message-ID. Required.
	ReplyDomain string
	// To is the email address the MMS goes to (the mapped sender of the
	// conversation). Required.
	To string
	// Cc are further addresses, such as the other members of a group
	// thread ("+15557654321@mms.example.net", see GroupCc).
	Cc []string
	// OrigSubject and OrigMessageID are those of the email this MMS
	// answers: the subject is used ("Re: …") when the MMS has none, and
	// the id goes into In-Reply-To and References.
	OrigSubject   string
	OrigMessageID string
	// References are earlier ids of the thread, before OrigMessageID.
	References []string
	// From is the sender when the MMS has none (an M-Send.req whose From
	// the MMSC inserts): a number or an address.
	From string
	// Region reads sender numbers without a country code ("US" if empty).
	Region string
	// Carriers are the boilerplate rules (nil: DefaultCarrierRules).
	Carriers *CarrierRules
	// MessageID is the new message's id without brackets (empty: a new
	// random one at ReplyDomain).
	MessageID string
	// Now is used when the MMS has no date (default time.Now).
	Now time.Time
}

// ErrNoSender is returned by ToEmail when the MMS has no usable sender.
var ErrNoSender = errors.New("mapping: the MMS has no sender")

// SenderNumber returns the sender of m as an E.164 number when it is one
// ("+15551234567/TYPE=PLMN", "15551234567@mms.att.net", "Name <…>"),
// reading numbers without a country code in region; ok is false otherwise,
// and s is then the address or local part as sent.
func SenderNumber(from, region string) (s string, ok bool) {
	if region == "" {
		region = "US"
	}
	a := strings.TrimSpace(from)
	if addr, err := mail.ParseAddress(a); err == nil {
		a = addr.Address
	} else if i := strings.LastIndexByte(a, '<'); i >= 0 && strings.HasSuffix(a, ">") {
		a = a[i+1 : len(a)-1]
	}
	local := a
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		local = a[:i]
	}
	if n, err := ParseNumber(local, NumberOptions{DefaultRegion: region}); err == nil {
		return n, true
	}
	return a, false
}

// GroupCc returns the addresses at mmsDomain of the members of a group
// MMS other than the sender and the numbers in self (the relay's own
// numbers): the To and Cc numbers of m, each once.
func GroupCc(m *MMS, self []string, mmsDomain, region string) []string {
	seen := map[string]bool{}
	for _, s := range self {
		if n, ok := SenderNumber(s, region); ok {
			seen[n] = true
		}
	}
	if n, ok := SenderNumber(m.From, region); ok {
		seen[n] = true
	}
	var out []string
	for _, a := range slices.Concat(m.To, m.Cc) {
		n, ok := SenderNumber(a, region)
		if !ok || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n+"@"+mmsDomain)
	}
	return out
}

// ToEmail writes m as an RFC 5322 message (CRLF line ends): From the
// sender's number at opts.ReplyDomain with the number as display name, To
// opts.To, Cc opts.Cc, the MMS subject or "Re: " and the original one,
// In-Reply-To and References, Date, a new Message-ID, and a flat
// multipart/mixed body: a UTF-8 text/plain part (quoted-printable) made of
// the text parts in SMIL order, then every other part (images, audio,
// video, …) as a base64 attachment with an ASCII file name. m is
// normalized first (see Normalize), in place.
func ToEmail(m *MMS, opts EmailOutOptions) ([]byte, error) {
	if opts.ReplyDomain == "" {
		return nil, errors.New("mapping: ToEmail needs a reply domain")
	}
	if opts.To == "" {
		return nil, errors.New("mapping: ToEmail needs a To address")
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	m.Normalize(opts.Carriers)
	from := m.From
	if from == "" {
		from = opts.From
	}
	num, ok := SenderNumber(from, opts.Region)
	if !ok {
		// Not a number we know (a short code, an address): keep what can
		// stand as a local part.
		local, _, _ := strings.Cut(num, "@")
		if i := strings.IndexByte(local, '/'); i >= 0 { // "/TYPE=PLMN"
			local = local[:i]
		}
		num = asciiFold(local)
		if num == "" {
			return nil, ErrNoSender
		}
	}

	var h gomail.Header
	h.SetAddressList("From", []*gomail.Address{{Name: num, Address: num + "@" + opts.ReplyDomain}})
	to, err := parseAddrs([]string{opts.To})
	if err != nil {
		return nil, fmt.Errorf("mapping: To: %w", err)
	}
	h.SetAddressList("To", to)
	if len(opts.Cc) > 0 {
		cc, err := parseAddrs(opts.Cc)
		if err != nil {
			return nil, fmt.Errorf("mapping: Cc: %w", err)
		}
		h.SetAddressList("Cc", cc)
	}
	subj := strings.TrimSpace(m.Subject)
	if subj == "" && strings.TrimSpace(opts.OrigSubject) != "" {
		subj = strings.TrimSpace(opts.OrigSubject)
		if !strings.HasPrefix(strings.ToLower(subj), "re:") {
			subj = "Re: " + subj
		}
	}
	if subj != "" {
		h.SetSubject(subj)
	}
	date := m.Date
	if date.IsZero() {
		date = opts.Now
	}
	h.SetDate(date)
	id := opts.MessageID
	if id == "" {
		id = NewID() + "@" + opts.ReplyDomain
	}
	h.SetMessageID(id)
	if orig := strings.Trim(opts.OrigMessageID, "<> "); orig != "" {
		h.SetMsgIDList("In-Reply-To", []string{orig})
		refs := make([]string, 0, len(opts.References)+1)
		for _, r := range opts.References {
			if r = strings.Trim(r, "<> "); r != "" && r != orig {
				refs = append(refs, r)
			}
		}
		h.SetMsgIDList("References", append(refs, orig))
	}
	h.Set("MIME-Version", "1.0")
	h.SetContentType("multipart/mixed", nil)

	var texts []string
	var media []pdu.Part
	for _, p := range m.Parts {
		if p.ContentType.Type == "text/plain" {
			texts = append(texts, string(p.Body))
		} else {
			media = append(media, p)
		}
	}
	var buf bytes.Buffer
	mw, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, fmt.Errorf("mapping: writing the email: %w", err)
	}
	var th message.Header
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	th.SetContentDisposition("inline", nil)
	text := strings.Join(texts, "\n")
	if text != "" {
		text = strings.ReplaceAll(text, "\n", "\r\n") + "\r\n"
	}
	if err := writePart(mw, th, []byte(text)); err != nil {
		return nil, err
	}
	hints := make([]NameHint, len(media))
	for i := range media {
		n := media[i].Name()
		if id := strings.Trim(media[i].ContentID, "<> "); n == "" && knownExt(strings.ToLower(path.Ext(id))) {
			n = id // "<photo.jpg>"
		}
		hints[i] = NameHint{Name: n, ContentType: media[i].ContentType.Type}
	}
	names := UniqueNames(hints)
	for i, p := range media {
		var ph message.Header
		ph.SetContentType(p.ContentType.Type, map[string]string{"name": names[i]})
		ph.Set("Content-Transfer-Encoding", "base64")
		ph.SetContentDisposition("attachment", map[string]string{"filename": names[i]})
		if err := writePart(mw, ph, p.Body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("mapping: writing the email: %w", err)
	}
	return buf.Bytes(), nil
}

func writePart(mw *message.Writer, h message.Header, body []byte) error {
	pw, err := mw.CreatePart(h)
	if err != nil {
		return fmt.Errorf("mapping: writing the email: %w", err)
	}
	if _, err := pw.Write(body); err != nil {
		return fmt.Errorf("mapping: writing the email: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("mapping: writing the email: %w", err)
	}
	return nil
}

func parseAddrs(l []string) ([]*gomail.Address, error) {
	ap := mail.AddressParser{WordDecoder: &mime.WordDecoder{}}
	var out []*gomail.Address
	for _, s := range l {
		as, err := ap.ParseList(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		for _, a := range as {
			out = append(out, (*gomail.Address)(a))
		}
	}
	return out, nil
}
