package main

// The decode command: a binary MMS PDU in, one JSON object out. It is a
// thin view of pdu.Message; the JSON is built by hand-ordered structs so that
// the key order is stable and documented below.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"net/textproto"

	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

const decodeHelp = `Decode reads one binary MMS PDU (application/vnd.wap.mms-message, as
OMA-MMS-ENC defines it) from FILE, or from standard input when FILE is "-"
or absent, and prints it as one indented JSON object with these keys, in
this order, each left out when the PDU does not carry it:

  message_type         the PDU type, e.g. "m-send-req"
  transaction_id, mms_version ("1.2"), message_id
  date                 RFC 3339, UTC
  from                 the address as encoded, e.g. "+15551234567/TYPE=PLMN";
                       "" with "from_insert": true for the insert-address token
  to, cc, bcc          arrays of addresses
  subject              UTF-8
  content_type         the message's media type, with content_type_params
  headers              every other header, by its specification name: tokens
                       by name ("Yes", "personal"), times in RFC 3339 or "+Ns"
                       when relative, unknown headers by name or "0xNN" code
  parts                one object per body part: content_type, charset, name,
                       content_id, content_location, size, sha256, text (the
                       UTF-8 text of a text/* part) and, with -parts, file

A body that is not multipart is reported as a single entry of "parts" whose
content_type is the message's content type.

A WSP Push PDU (as an m-notification-ind arrives over SMS or WAP push) is
unwrapped first; error offsets then count from the start of the push.

Input that is not a PDU makes decode fail with a line saying so. Email
(MM4) input is recognised but not decoded yet.
`

// maxInput bounds what decode reads: no MMS comes near it.
const maxInput = 256 << 20

func runDecode(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("decode", "[-parts DIR] [-strict] [FILE|-]", decodeHelp)
	partsDir := fs.String("parts", "", "write each part's body to `DIR`/<index>-<name>, creating DIR")
	strict := fs.Bool("strict", false, "reject what lenient decoding accepts (wrong forms, unknown tokens, bad order)")
	if st, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() > 1 {
		return usageError(fs, stderr, "one input file at most, got %d", fs.NArg())
	}
	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	in, err := readInput(name, stdin)
	if err != nil {
		return fail(stderr, "decode", err)
	}
	if name == "-" {
		name = "stdin"
	}
	var m *pdu.Message
	var out *decoded
	if looksLikeEmail(in) {
		m, out, err = decodeMM4(in)
	} else if m, err = decodeInput(in, pdu.Decoder{Strict: *strict}); err == nil {
		out = describe(m)
	}
	if err != nil {
		return fail(stderr, "decode", fmt.Errorf("%s: %w", name, err))
	}
	if *partsDir != "" {
		if err := writeParts(*partsDir, m, out.Parts); err != nil {
			return fail(stderr, "decode", err)
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // Content-IDs are "<…>"
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fail(stderr, "decode", err)
	}
	if _, err := stdout.Write(b.Bytes()); err != nil {
		return fail(stderr, "decode", err)
	}
	return exitOK
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("%s: input larger than %d MiB", name, maxInput>>20)
	}
	return b, nil
}

// decodeMM4 reads an MM4 message (3GPP TS 23.140: mail with X-Mms-*
// header fields) into the same JSON: message_type is the X-Mms-Message-Type
// value, mms_version the X-Mms-3GPP-MMS-Version, the MIME parts are the
// parts. It returns the parts as a pdu.Message for -parts.
func decodeMM4(in []byte) (*pdu.Message, *decoded, error) {
	mm, err := mm4.Parse(in)
	if errors.Is(err, mm4.ErrNotMM4) {
		return nil, nil, errors.New("not an MMS PDU, and not an MM4 message either: an email without an X-Mms-Message-Type header")
	}
	if err != nil {
		return nil, nil, err
	}
	top, parts, err := mm.Parts(mm4.Limits{})
	if err != nil {
		return nil, nil, err
	}
	d := &decoded{MessageType: mm.Type, TransactionID: mm.TransactionID, MMSVersion: mm.Version,
		MessageID: mm.MessageID, To: mm.To, Cc: mm.Cc, Subject: mm.Subject}
	if top.Type != "" && len(parts) > 0 && len(mm.Body) > 0 {
		d.ContentType = top.Type
		d.ContentTypeParams = params(top.Params)
	}
	if !mm.Date.IsZero() {
		d.Date = mm.Date.UTC().Format(time.RFC3339)
	}
	if mm.From != "" {
		d.From = &mm.From
	}
	skip := map[string]bool{"X-Mms-Message-Type": true, "X-Mms-Transaction-Id": true, "X-Mms-Message-Id": true,
		"X-Mms-3gpp-Mms-Version": true}
	fields := mm.Header.Fields()
	var hdrs jsonObject
	var list []jsonField
	for fields.Next() {
		k := fields.Key()
		if !strings.HasPrefix(strings.ToLower(k), "x-mms-") || skip[textproto.CanonicalMIMEHeaderKey(k)] {
			continue
		}
		list = append(list, jsonField{k, strings.TrimSpace(fields.Value())})
	}
	for _, f := range list {
		hdrs.add(f.key, f.value)
	}
	if mm.Sender != "" {
		hdrs.add("Sender", mm.Sender)
	}
	d.Headers = hdrs
	if len(mm.Body) == 0 {
		parts = nil
	}
	m := &pdu.Message{ContentType: pdu.ContentType{Type: "multipart/mixed"}, Parts: parts}
	for i := range parts {
		d.Parts = append(d.Parts, describePart(&parts[i]))
	}
	return m, d, nil
}

// decodeInput decodes in as an MMS PDU, unwrapping a WSP push first. The
// Message aliases in.
func decodeInput(in []byte, d pdu.Decoder) (*pdu.Message, error) {
	body, shift := in, 0
	if pdu.IsPush(in) {
		ct, b, err := pdu.UnwrapPush(in)
		if err != nil {
			return nil, fmt.Errorf("WSP push: %w", err)
		}
		if ct.Type != "application/vnd.wap.mms-message" {
			return nil, fmt.Errorf("not an MMS PDU: a WSP push of %q", ct.Type)
		}
		body, shift = b, len(in)-len(b)
	}
	m, err := safeDecode(d, body)
	if err == nil {
		return m, nil
	}
	var de *pdu.DecodeError
	if errors.As(err, &de) {
		if pdu.IsNotPDU(err) {
			return nil, de.Err // "not an MMS PDU (first octets …)"
		}
		if shift > 0 {
			e := *de
			e.Offset += shift
			return nil, &e
		}
	}
	return nil, err
}

// safeDecode calls d.Decode and turns a panic, which the codec promises not
// to raise, into an error, so that decode still ends with one line.
func safeDecode(d pdu.Decoder, b []byte) (m *pdu.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("internal error: the PDU decoder panicked (%v); please report it with the input", r)
		}
	}()
	return d.Decode(b)
}

// looksLikeEmail reports whether b starts, after an optional UTF-8 BOM,
// like an RFC 5322 header block: a field name of printable ASCII other than
// ':' and a colon on the first line (RFC 5322 §2.2), or an mbox "From " line.
func looksLikeEmail(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	if bytes.HasPrefix(b, []byte("From ")) {
		return true
	}
	for i, c := range b {
		switch {
		case c == ':':
			return i > 0
		case c < 33 || c > 126:
			return false
		}
		if i >= 76 { // longer than any header field name in practice
			return false
		}
	}
	return false
}

// decoded is the JSON form of a message. Field order is the output order.
type decoded struct {
	MessageType       string     `json:"message_type,omitempty"`
	TransactionID     string     `json:"transaction_id,omitempty"`
	MMSVersion        string     `json:"mms_version,omitempty"`
	MessageID         string     `json:"message_id,omitempty"`
	Date              string     `json:"date,omitempty"`
	From              *string    `json:"from,omitempty"`
	FromInsert        bool       `json:"from_insert,omitempty"`
	To                []string   `json:"to,omitempty"`
	Cc                []string   `json:"cc,omitempty"`
	Bcc               []string   `json:"bcc,omitempty"`
	Subject           string     `json:"subject,omitempty"`
	ContentType       string     `json:"content_type,omitempty"`
	ContentTypeParams jsonObject `json:"content_type_params,omitempty"`
	Headers           jsonObject `json:"headers,omitempty"`
	Parts             []part     `json:"parts,omitempty"`
}

// part is the JSON form of a body part.
type part struct {
	ContentType     string  `json:"content_type"`
	Charset         string  `json:"charset,omitempty"`
	Name            string  `json:"name,omitempty"`
	ContentID       string  `json:"content_id,omitempty"`
	ContentLocation string  `json:"content_location,omitempty"`
	Size            int     `json:"size"`
	SHA256          string  `json:"sha256"`
	Text            *string `json:"text,omitempty"`
	File            string  `json:"file,omitempty"`
}

// jsonObject is a JSON object that keeps its keys in insertion order.
type jsonObject []jsonField

type jsonField struct {
	key   string
	value any
}

// add sets key to v; a key added again gathers its values in an array.
func (o *jsonObject) add(key string, v any) {
	for i := range *o {
		f := &(*o)[i]
		if f.key != key {
			continue
		}
		if a, ok := f.value.([]any); ok {
			f.value = append(a, v)
		} else {
			f.value = []any{f.value, v}
		}
		return
	}
	*o = append(*o, jsonField{key, v})
}

// MarshalJSON writes the fields in order.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(f.key); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		if err := enc.Encode(f.value); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// describe returns the JSON form of m.
func describe(m *pdu.Message) *decoded {
	d := &decoded{
		MessageType:   m.Type.String(),
		TransactionID: m.TransactionID,
		MMSVersion:    m.Version.String(),
		MessageID:     m.MessageID,
		To:            addrs(m.To),
		Cc:            addrs(m.Cc),
		Bcc:           addrs(m.Bcc),
		Subject:       m.Subject.String(),
		ContentType:   m.ContentType.Type,
	}
	if !m.Date.IsZero() {
		d.Date = m.Date.UTC().Format(time.RFC3339)
	}
	if m.From != nil {
		s := m.From.Address.String()
		d.From = &s
		d.FromInsert = m.From.Insert
	}
	d.ContentTypeParams = params(m.ContentType.Params)
	d.Headers = headers(m)
	switch {
	case m.ContentType.IsMultipart():
		for i := range m.Parts {
			d.Parts = append(d.Parts, describePart(&m.Parts[i]))
		}
	case m.ContentType.Type != "":
		d.Parts = append(d.Parts, describePart(&pdu.Part{ContentType: m.ContentType, Body: m.Body}))
	}
	return d
}

func describePart(p *pdu.Part) part {
	sum := sha256.Sum256(p.Body)
	out := part{
		ContentType:     p.ContentType.Type,
		Charset:         p.ContentType.Param("charset"),
		Name:            p.Name(),
		ContentID:       p.ContentID,
		ContentLocation: p.ContentLocation,
		Size:            len(p.Body),
		SHA256:          hex.EncodeToString(sum[:]),
	}
	if t, ok := p.Text(); ok {
		out.Text = &t
	}
	return out
}

func addrs(a []pdu.EncodedString) []string {
	var out []string
	for _, s := range a {
		out = append(out, s.String())
	}
	return out
}

// params returns Content-Type parameters by name; a parameter the codec
// could not read is keyed by its "0xNN" code, its raw value in hex.
func params(ps []pdu.Param) jsonObject {
	var o jsonObject
	for _, p := range ps {
		if p.Name == "" {
			o.add(fmt.Sprintf("0x%02X", p.Token&0x7F), rawValue([]byte(p.Value)))
			continue
		}
		o.add(p.Name, p.Value)
	}
	return o
}

// headers returns every header of m that decode does not show as a key of
// its own, in field-code order, then the unknown headers in wire order.
func headers(m *pdu.Message) jsonObject {
	var o jsonObject
	for f := pdu.Field(1); f <= pdu.FieldCancelStatus; f++ {
		if v, ok := headerValue(m, f); ok {
			o.add(f.String(), v)
		}
	}
	for _, h := range m.Unknown {
		if h.Code == 0 {
			o.add(h.Name, pdu.Charset(0).Decode(h.Value))
			continue
		}
		o.add(pdu.Field(h.Code&0x7F).String(), rawValue(h.Value))
	}
	return o
}

// rawValue shows a raw header value: the text of a Text-string (printable
// octets and a final NUL), "0x" and the octets in hex otherwise.
func rawValue(b []byte) string {
	if t, ok := bytes.CutSuffix(b, []byte{0}); ok && len(t) > 0 {
		t = bytes.TrimPrefix(t, []byte{0x7F}) // the Quote before high text
		printable := true
		for _, c := range t {
			if c < 0x20 || c == 0x7F {
				printable = false
				break
			}
		}
		if printable {
			return pdu.Charset(0).Decode(t)
		}
	}
	return "0x" + hex.EncodeToString(b)
}

// headerValue returns the JSON value of header f of m and whether it is
// set. Headers shown elsewhere (type, ids, addresses, subject, date,
// content type) report false.
func headerValue(m *pdu.Message, f pdu.Field) (any, bool) {
	str := func(s string) (any, bool) { return s, s != "" }
	tok := func(s fmt.Stringer, zero bool) (any, bool) { return s.String(), !zero }
	enc := func(s pdu.EncodedString) (any, bool) { return s.String(), !s.IsZero() }
	num := func(p *uint64) (any, bool) {
		if p == nil {
			return nil, false
		}
		return *p, true
	}
	switch f {
	case pdu.FieldContentLocation:
		return str(m.ContentLocation)
	case pdu.FieldMessageClass:
		return str(m.MessageClass)
	case pdu.FieldMessageSize:
		return m.MessageSize, m.MessageSize != 0
	case pdu.FieldPriority:
		return tok(m.Priority, m.Priority == 0)
	case pdu.FieldDeliveryReport:
		return tok(m.DeliveryReport, m.DeliveryReport == 0)
	case pdu.FieldReadReport:
		return tok(m.ReadReport, m.ReadReport == 0)
	case pdu.FieldReportAllowed:
		return tok(m.ReportAllowed, m.ReportAllowed == 0)
	case pdu.FieldResponseStatus:
		return tok(m.ResponseStatus, m.ResponseStatus == 0)
	case pdu.FieldResponseText:
		return enc(m.ResponseText)
	case pdu.FieldSenderVisibility:
		return tok(m.SenderVisibility, m.SenderVisibility == 0)
	case pdu.FieldStatus:
		return tok(m.Status, m.Status == 0)
	case pdu.FieldExpiry:
		return timeValue(m.Expiry)
	case pdu.FieldDeliveryTime:
		return timeValue(m.DeliveryTime)
	case pdu.FieldRetrieveStatus:
		return tok(m.RetrieveStatus, m.RetrieveStatus == 0)
	case pdu.FieldRetrieveText:
		return enc(m.RetrieveText)
	case pdu.FieldReadStatus:
		return tok(m.ReadStatus, m.ReadStatus == 0)
	case pdu.FieldReplyCharging:
		return tok(m.ReplyCharging, m.ReplyCharging == 0)
	case pdu.FieldReplyChargingDeadline:
		return timeValue(m.ReplyChargingDeadline)
	case pdu.FieldReplyChargingID:
		return str(m.ReplyChargingID)
	case pdu.FieldReplyChargingSize:
		return m.ReplyChargingSize, m.ReplyChargingSize != 0
	case pdu.FieldPreviouslySentBy:
		var a []any
		for _, p := range m.PreviouslySentBy {
			a = append(a, jsonObject{{"count", p.Count}, {"address", p.Address.String()}})
		}
		return a, len(a) > 0
	case pdu.FieldPreviouslySentDate:
		var a []any
		for _, p := range m.PreviouslySentDate {
			a = append(a, jsonObject{{"count", p.Count}, {"date", p.Date.UTC().Format(time.RFC3339)}})
		}
		return a, len(a) > 0
	case pdu.FieldStore:
		return tok(m.Store, m.Store == 0)
	case pdu.FieldMMState:
		return tok(m.MMState, m.MMState == 0)
	case pdu.FieldMMFlags:
		var a []any
		for _, fl := range m.MMFlags {
			op := map[byte]string{0x80: "add", 0x81: "remove", 0x82: "filter"}[fl.Op]
			if op == "" {
				op = fmt.Sprintf("0x%02X", fl.Op)
			}
			a = append(a, jsonObject{{"op", op}, {"flag", fl.Flag.String()}})
		}
		return a, len(a) > 0
	case pdu.FieldStoreStatus:
		return tok(m.StoreStatus, m.StoreStatus == 0)
	case pdu.FieldStoreStatusText:
		return enc(m.StoreStatusText)
	case pdu.FieldStored:
		return tok(m.Stored, m.Stored == 0)
	case pdu.FieldAttributes:
		var a []string
		for _, at := range m.Attributes {
			a = append(a, at.String())
		}
		return a, len(a) > 0
	case pdu.FieldTotals:
		return tok(m.Totals, m.Totals == 0)
	case pdu.FieldMboxTotals:
		return quantities(m.MboxTotals)
	case pdu.FieldQuotas:
		return tok(m.Quotas, m.Quotas == 0)
	case pdu.FieldMboxQuotas:
		return quantities(m.MboxQuotas)
	case pdu.FieldMessageCount:
		return num(m.MessageCount)
	case pdu.FieldStart:
		return num(m.Start)
	case pdu.FieldDistributionIndicator:
		return tok(m.DistributionIndicator, m.DistributionIndicator == 0)
	case pdu.FieldElementDescriptor:
		var a []any
		for _, e := range m.ElementDescriptors {
			o := jsonObject{{"reference", e.Reference}}
			if p := params(e.Params); len(p) > 0 {
				o = append(o, jsonField{"params", p})
			}
			a = append(a, o)
		}
		return a, len(a) > 0
	case pdu.FieldLimit:
		return num(m.Limit)
	case pdu.FieldRecommendedRetrievalMode:
		return tok(m.RecommendedRetrievalMode, m.RecommendedRetrievalMode == 0)
	case pdu.FieldRecommendedRetrievalModeText:
		return enc(m.RecommendedRetrievalModeText)
	case pdu.FieldStatusText:
		return enc(m.StatusText)
	case pdu.FieldApplicID:
		return str(m.ApplicID)
	case pdu.FieldReplyApplicID:
		return str(m.ReplyApplicID)
	case pdu.FieldAuxApplicInfo:
		return str(m.AuxApplicInfo)
	case pdu.FieldContentClass:
		return tok(m.ContentClass, m.ContentClass == 0)
	case pdu.FieldDRMContent:
		return tok(m.DRMContent, m.DRMContent == 0)
	case pdu.FieldAdaptationAllowed:
		return tok(m.AdaptationAllowed, m.AdaptationAllowed == 0)
	case pdu.FieldReplaceID:
		return str(m.ReplaceID)
	case pdu.FieldCancelID:
		return str(m.CancelID)
	case pdu.FieldCancelStatus:
		return tok(m.CancelStatus, m.CancelStatus == 0)
	}
	return nil, false
}

// timeValue shows an absolute time in RFC 3339 and a relative one as "+Ns".
func timeValue(v *pdu.TimeValue) (any, bool) {
	if v == nil {
		return nil, false
	}
	if v.Relative {
		return "+" + strconv.FormatUint(v.Seconds, 10) + "s", true
	}
	return v.Time(time.Time{}).Format(time.RFC3339), true
}

func quantities(qs []pdu.Quantity) (any, bool) {
	var a []any
	for _, q := range qs {
		unit := "messages"
		if q.Size {
			unit = "octets"
		}
		a = append(a, jsonObject{{"unit", unit}, {"value", q.Value}})
	}
	return a, len(a) > 0
}

// writeParts writes the body of each part of m into dir as
// <index>-<safe name>, index counting from 1, and records the path in
// parts[i].File.
func writeParts(dir string, m *pdu.Message, parts []part) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bodies := make([][]byte, 0, len(parts))
	if m.ContentType.IsMultipart() {
		for i := range m.Parts {
			bodies = append(bodies, m.Parts[i].Body)
		}
	} else if len(parts) == 1 {
		bodies = append(bodies, m.Body)
	}
	for i, body := range bodies {
		name := strconv.Itoa(i+1) + "-" + safeName(parts[i].Name, parts[i].ContentType)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, body, 0o644); err != nil {
			return err
		}
		parts[i].File = path
	}
	return nil
}

// extensions gives a file name extension for parts that have no name.
var extensions = map[string]string{
	"text/plain": ".txt", "application/smil": ".smil", "text/html": ".html",
	"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/bmp": ".bmp",
	"image/vnd.wap.wbmp": ".wbmp", "audio/amr": ".amr", "audio/mpeg": ".mp3",
	"video/3gpp": ".3gp", "video/mp4": ".mp4", "text/x-vcard": ".vcf", "text/x-vcalendar": ".vcs",
}

// safeName turns a part name into a file name of ASCII letters, digits and
// "._-+", with no path separator, no "..", and no leading dot. A part
// without a usable name is called "part", with an extension for its type.
func safeName(name, contentType string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '_', r == '-', r == '+':
			return r
		}
		return '_'
	}, name)
	for strings.Contains(name, "..") {
		name = strings.ReplaceAll(name, "..", ".")
	}
	name = strings.TrimLeft(name, ".")
	if len(name) > 100 {
		name = name[len(name)-100:]
	}
	if strings.Trim(name, "_.") == "" {
		name = "part" + extensions[contentType]
	}
	return name
}
