package pdu

import (
	"bytes"
	"slices"
	"strings"
	"time"
)

// Decoder decodes PDUs. The zero value is a lenient decoder.
type Decoder struct {
	// Strict makes the decoder report what lenient decoding accepts: values
	// of the wrong form, unknown tokens and headers, non-minimal encodings,
	// repeated headers, missing mandatory headers, headers out of order and
	// data after the last part.
	Strict bool
	// MaxParts bounds the number of parts of a multipart body (default 1000).
	MaxParts int
}

// Decode decodes a PDU leniently: it accepts the quirks that real handsets
// and MMSCs send. Part bodies and raw values alias b.
func Decode(b []byte) (*Message, error) { return Decoder{}.Decode(b) }

// Decode decodes the PDU in b. Part bodies and raw values alias b.
func (d Decoder) Decode(b []byte) (*Message, error) {
	if len(b) < 2 || b[0] != 0x80|byte(FieldMessageType) || b[1] < 0x80 {
		got := "empty input"
		if len(b) > 0 {
			got = "first octets " + hexPrefix(b)
		}
		return nil, &DecodeError{Offset: 0, Field: FieldMessageType.String(), Err: wrapNotPDU(got)}
	}
	if d.Strict && !MessageType(b[1]).Known() {
		return nil, &DecodeError{Offset: 1, Field: FieldMessageType.String(), Err: errBadToken}
	}
	r := &reader{b: b, strict: d.Strict}
	m := &Message{}
	var obuf [48]Field
	order := obuf[:0]
	var seen [128]bool
	for r.off < len(b) {
		start := r.off
		c := b[r.off]
		if c >= 0x80 {
			f := Field(c & 0x7F)
			r.off++
			if f == FieldContentType {
				if err := d.decodeBody(r, m); err != nil {
					return nil, err
				}
				break
			}
			if d.Strict {
				if seen[f] && !repeatable(f) {
					return nil, &DecodeError{Offset: start, Field: f.String(), Err: errDuplicate}
				}
				if err := checkPosition(f, len(order), m.Type); err != nil {
					return nil, &DecodeError{Offset: start, Field: f.String(), Err: err}
				}
			}
			// A repeated single-valued header that fails to read must not
			// clobber the value the first one gave (lenient mode).
			var saved *Message
			if seen[f] && !repeatable(f) && !d.Strict {
				c := *m
				saved = &c
			}
			seen[f] = true
			err := m.decodeField(r, f)
			if err == nil {
				order = append(order, f)
				continue
			}
			if d.Strict {
				return nil, &DecodeError{Offset: start + 1, Field: f.String(), Err: err}
			}
			if saved != nil {
				*m = *saved
			}
			// Lenient: keep the header as it came, if its extent can be told.
			r.off = start + 1
			raw, err2 := r.skipValue()
			if err2 != nil {
				return nil, &DecodeError{Offset: start + 1, Field: f.String(), Err: err}
			}
			m.Unknown = append(m.Unknown, Header{Code: c, Value: raw})
			order = append(order, FieldUnknown)
			continue
		}
		// Application header: Token-text Text-string.
		if c == 0 && !d.Strict && allZero(b[r.off:]) {
			break // NUL padding after the last header, seen in the wild
		}
		if c < 0x20 || c == 0x7F {
			return nil, &DecodeError{Offset: start, Field: "header", Err: errBadToken}
		}
		name, err := r.text()
		if err != nil {
			return nil, &DecodeError{Offset: start, Field: "application header name", Err: err}
		}
		vstart := r.off
		val, err := r.textBytes()
		if err != nil {
			return nil, &DecodeError{Offset: vstart, Field: "application header " + name, Err: err}
		}
		m.Unknown = append(m.Unknown, Header{Name: name, Value: val})
		order = append(order, FieldUnknown)
	}
	if m.Type == 0 {
		return nil, &DecodeError{Offset: 0, Field: FieldMessageType.String(), Err: errMissing}
	}
	if d.Strict {
		if err := m.Validate(); err != nil {
			return nil, &DecodeError{Offset: len(b), Field: err.(*fieldError).field, Err: err.(*fieldError).err}
		}
	}
	var cbuf [48]Field
	if !sameOrder(order, m.appendOrder(cbuf[:0])) {
		m.Order = slices.Clone(order)
	}
	return m, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func hexPrefix(b []byte) string {
	const digits = "0123456789abcdef"
	n := min(len(b), 4)
	var sb strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteByte(digits[b[i]>>4])
		sb.WriteByte(digits[b[i]&15])
	}
	return sb.String()
}

type notPDUError struct{ got string }

func (e *notPDUError) Error() string {
	return errNotPDU.Error() + " (" + e.got + "; a PDU starts with 8c, X-Mms-Message-Type)"
}
func (e *notPDUError) Unwrap() error { return errNotPDU }

func wrapNotPDU(got string) error { return &notPDUError{got} }

// IsNotPDU reports whether err says the input is not an MMS PDU at all.
func IsNotPDU(err error) bool {
	for e := err; e != nil; {
		if e == errNotPDU {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

func sameOrder(a, b []Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkPosition enforces OMA-MMS-ENC §7: Message-Type first, then
// Transaction-ID (for the types that carry one), then MMS-Version.
func checkPosition(f Field, n int, t MessageType) error {
	switch n {
	case 0:
		if f != FieldMessageType {
			return errOrder
		}
	case 1:
		if f != FieldTransactionID && f != FieldMMSVersion {
			return errOrder
		}
	}
	return nil
}

// text reads a Text-string header value, refusing a first octet that can
// only start another kind of value.
func (r *reader) textValue() (string, error) {
	c, err := r.peek()
	if err != nil {
		return "", err
	}
	if c > 0 && c < 0x20 {
		return "", errBadToken
	}
	return r.text()
}

func (r *reader) token() (byte, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	if c < 0x80 {
		r.off--
		return 0, errBadToken
	}
	return c, nil
}

func (r *reader) tokenIn(lo, hi byte) (byte, error) {
	c, err := r.token()
	if err != nil {
		return 0, err
	}
	if r.strict && (c < lo || c > hi) {
		return 0, errBadToken
	}
	return c, nil
}

func (r *reader) knownToken(names func(byte) string) (byte, error) {
	c, err := r.token()
	if err != nil {
		return 0, err
	}
	if r.strict && strings.HasPrefix(names(c), "0x") {
		return 0, errBadToken
	}
	return c, nil
}

// sub returns a reader over the next Value-length octets and skips them.
func (r *reader) sub() (reader, error) {
	n, err := r.valueLength()
	if err != nil {
		return reader{}, err
	}
	s := reader{b: r.b[:r.off+n], off: r.off, strict: r.strict}
	r.off += n
	return s, nil
}

func (r *reader) done() error {
	if r.strict && r.off != len(r.b) {
		return errTrailing
	}
	return nil
}

func (r *reader) date() (time.Time, error) {
	v, err := r.longInteger()
	if err != nil {
		return time.Time{}, err
	}
	if v > 1<<40 {
		return time.Time{}, errLongInteger
	}
	return time.Unix(int64(v), 0).UTC(), nil
}

// timeValue reads Expiry, Delivery-Time and Reply-Charging-Deadline:
//
//	Value-length (Absolute-token Date-value | Relative-token Delta-seconds-value)
func (r *reader) timeValue() (*TimeValue, error) {
	s, err := r.sub()
	if err != nil {
		return nil, err
	}
	tok, err := s.byte()
	if err != nil {
		return nil, err
	}
	var v uint64
	switch tok {
	case 0x80:
		v, err = s.longInteger()
	case 0x81:
		v, err = s.integer()
	default:
		return nil, errBadToken
	}
	if err != nil {
		return nil, err
	}
	return &TimeValue{Relative: tok == 0x81, Seconds: v}, s.done()
}

func (r *reader) size() (uint64, error) {
	if r.strict {
		return r.longInteger()
	}
	return r.integer()
}

// decodeField reads the value of field f into m.
func (m *Message) decodeField(r *reader, f Field) error {
	var err error
	switch f {
	case FieldMessageType:
		var c byte
		c, err = r.token()
		m.Type = MessageType(c)
	case FieldTransactionID:
		m.TransactionID, err = r.textValue()
	case FieldMMSVersion:
		var c byte
		c, err = r.token()
		m.Version = Version(c)
	case FieldMessageID:
		m.MessageID, err = r.textValue()
	case FieldDate:
		m.Date, err = r.date()
	case FieldFrom:
		var s reader
		if s, err = r.sub(); err != nil {
			return err
		}
		var tok byte
		if tok, err = s.byte(); err != nil {
			return err
		}
		switch tok {
		case 0x80:
			var a EncodedString
			if a, err = s.encodedString(); err != nil {
				return err
			}
			m.From = &From{Address: a}
		case 0x81:
			m.From = &From{Insert: true}
		default:
			return errBadToken
		}
		err = s.done()
	case FieldTo, FieldCc, FieldBcc:
		var a EncodedString
		if a, err = r.encodedString(); err != nil {
			return err
		}
		switch f {
		case FieldTo:
			m.To = append(m.To, a)
		case FieldCc:
			m.Cc = append(m.Cc, a)
		default:
			m.Bcc = append(m.Bcc, a)
		}
	case FieldSubject:
		m.Subject, err = r.encodedString()
	case FieldContentLocation:
		m.ContentLocation, err = r.textValue()
	case FieldMessageClass:
		var c byte
		if c, err = r.peek(); err != nil {
			return err
		}
		if c >= 0x80 {
			if c > 0x83 {
				return errBadToken
			}
			r.off++
			m.MessageClass = messageClassTokens[c-0x80]
		} else {
			m.MessageClass, err = r.textValue()
		}
	case FieldMessageSize:
		m.MessageSize, err = r.size()
	case FieldReplyChargingSize:
		m.ReplyChargingSize, err = r.size()
	case FieldPriority:
		var c byte
		c, err = r.tokenIn(0x80, 0x82)
		m.Priority = Priority(c)
	case FieldDeliveryReport, FieldReadReport, FieldReportAllowed, FieldStore, FieldStored,
		FieldTotals, FieldQuotas, FieldDistributionIndicator, FieldDRMContent, FieldAdaptationAllowed:
		var c byte
		if c, err = r.tokenIn(0x80, 0x81); err != nil {
			return err
		}
		*m.yesNo(f) = YesNo(c)
	case FieldResponseStatus:
		var c byte
		c, err = r.knownToken(func(b byte) string { return ResponseStatus(b).String() })
		m.ResponseStatus = ResponseStatus(c)
	case FieldRetrieveStatus:
		var c byte
		c, err = r.knownToken(func(b byte) string { return RetrieveStatus(b).String() })
		m.RetrieveStatus = RetrieveStatus(c)
	case FieldStatus:
		var c byte
		c, err = r.tokenIn(0x80, 0x87)
		m.Status = Status(c)
	case FieldSenderVisibility:
		var c byte
		c, err = r.tokenIn(0x80, 0x81)
		m.SenderVisibility = Visibility(c)
	case FieldReadStatus:
		var c byte
		c, err = r.tokenIn(0x80, 0x81)
		m.ReadStatus = ReadStatus(c)
	case FieldReplyCharging:
		var c byte
		c, err = r.tokenIn(0x80, 0x83)
		m.ReplyCharging = ReplyCharging(c)
	case FieldMMState:
		var c byte
		c, err = r.tokenIn(0x80, 0x84)
		m.MMState = MMState(c)
	case FieldStoreStatus:
		var c byte
		c, err = r.knownToken(func(b byte) string { return StoreStatus(b).String() })
		m.StoreStatus = StoreStatus(c)
	case FieldContentClass:
		var c byte
		c, err = r.tokenIn(0x80, 0x87)
		m.ContentClass = ContentClass(c)
	case FieldRecommendedRetrievalMode:
		var c byte
		c, err = r.tokenIn(0x80, 0x80)
		m.RecommendedRetrievalMode = RetrievalMode(c)
	case FieldCancelStatus:
		var c byte
		c, err = r.tokenIn(0x80, 0x81)
		m.CancelStatus = CancelStatus(c)
	case FieldResponseText, FieldRetrieveText, FieldStoreStatusText, FieldStatusText,
		FieldRecommendedRetrievalModeText:
		var s EncodedString
		if s, err = r.encodedString(); err != nil {
			return err
		}
		*m.encoded(f) = s
	case FieldExpiry:
		m.Expiry, err = r.timeValue()
	case FieldDeliveryTime:
		m.DeliveryTime, err = r.timeValue()
	case FieldReplyChargingDeadline:
		m.ReplyChargingDeadline, err = r.timeValue()
	case FieldReplyChargingID, FieldApplicID, FieldReplyApplicID, FieldAuxApplicInfo,
		FieldReplaceID, FieldCancelID:
		var s string
		if s, err = r.textValue(); err != nil {
			return err
		}
		*m.textField(f) = s
	case FieldPreviouslySentBy:
		var s reader
		if s, err = r.sub(); err != nil {
			return err
		}
		var v PreviouslySentBy
		if v.Count, err = s.integer(); err != nil {
			return err
		}
		if v.Address, err = s.encodedString(); err != nil {
			return err
		}
		m.PreviouslySentBy = append(m.PreviouslySentBy, v)
		err = s.done()
	case FieldPreviouslySentDate:
		var s reader
		if s, err = r.sub(); err != nil {
			return err
		}
		var v PreviouslySentDate
		if v.Count, err = s.integer(); err != nil {
			return err
		}
		if v.Date, err = s.date(); err != nil {
			return err
		}
		m.PreviouslySentDate = append(m.PreviouslySentDate, v)
		err = s.done()
	case FieldMMFlags:
		var s reader
		if s, err = r.sub(); err != nil {
			return err
		}
		var v MMFlag
		if v.Op, err = s.tokenIn(0x80, 0x82); err != nil {
			return err
		}
		if v.Flag, err = s.encodedString(); err != nil {
			return err
		}
		m.MMFlags = append(m.MMFlags, v)
		err = s.done()
	case FieldAttributes:
		var c byte
		if c, err = r.token(); err != nil {
			return err
		}
		m.Attributes = append(m.Attributes, Field(c&0x7F))
	case FieldMboxTotals, FieldMboxQuotas:
		var s reader
		if s, err = r.sub(); err != nil {
			return err
		}
		var tok byte
		if tok, err = s.tokenIn(0x80, 0x81); err != nil {
			return err
		}
		if tok > 0x81 {
			return errBadToken
		}
		q := Quantity{Size: tok == 0x81}
		if q.Value, err = s.integer(); err != nil {
			return err
		}
		if f == FieldMboxTotals {
			m.MboxTotals = append(m.MboxTotals, q)
		} else {
			m.MboxQuotas = append(m.MboxQuotas, q)
		}
		err = s.done()
	case FieldMessageCount, FieldStart, FieldLimit:
		var v uint64
		if v, err = r.integer(); err != nil {
			return err
		}
		switch f {
		case FieldMessageCount:
			m.MessageCount = &v
		case FieldStart:
			m.Start = &v
		default:
			m.Limit = &v
		}
	case FieldElementDescriptor:
		var s reader
		if s, err = r.sub(); err != nil {
			return err
		}
		var v ElementDescriptor
		if v.Reference, err = s.textValue(); err != nil {
			return err
		}
		for s.off < len(s.b) {
			c := s.b[s.off]
			if c == 0x82 {
				s.off++
				var t string
				if t, err = s.constrainedMedia(); err != nil {
					return err
				}
				v.Params = append(v.Params, Param{Name: "type", Value: t})
				continue
			}
			var name, val string
			if name, err = s.textValue(); err != nil {
				return err
			}
			if val, err = s.text(); err != nil {
				return err
			}
			v.Params = append(v.Params, Param{Name: strings.ToLower(name), Value: val})
		}
		m.ElementDescriptors = append(m.ElementDescriptors, v)
	default:
		return errBadToken
	}
	return err
}

func (m *Message) yesNo(f Field) *YesNo {
	switch f {
	case FieldDeliveryReport:
		return &m.DeliveryReport
	case FieldReadReport:
		return &m.ReadReport
	case FieldReportAllowed:
		return &m.ReportAllowed
	case FieldStore:
		return &m.Store
	case FieldStored:
		return &m.Stored
	case FieldTotals:
		return &m.Totals
	case FieldQuotas:
		return &m.Quotas
	case FieldDistributionIndicator:
		return &m.DistributionIndicator
	case FieldDRMContent:
		return &m.DRMContent
	case FieldAdaptationAllowed:
		return &m.AdaptationAllowed
	}
	return nil
}

func (m *Message) encoded(f Field) *EncodedString {
	switch f {
	case FieldSubject:
		return &m.Subject
	case FieldResponseText:
		return &m.ResponseText
	case FieldRetrieveText:
		return &m.RetrieveText
	case FieldStoreStatusText:
		return &m.StoreStatusText
	case FieldStatusText:
		return &m.StatusText
	case FieldRecommendedRetrievalModeText:
		return &m.RecommendedRetrievalModeText
	}
	return nil
}

func (m *Message) textField(f Field) *string {
	switch f {
	case FieldTransactionID:
		return &m.TransactionID
	case FieldMessageID:
		return &m.MessageID
	case FieldContentLocation:
		return &m.ContentLocation
	case FieldMessageClass:
		return &m.MessageClass
	case FieldReplyChargingID:
		return &m.ReplyChargingID
	case FieldApplicID:
		return &m.ApplicID
	case FieldReplyApplicID:
		return &m.ReplyApplicID
	case FieldAuxApplicInfo:
		return &m.AuxApplicInfo
	case FieldReplaceID:
		return &m.ReplaceID
	case FieldCancelID:
		return &m.CancelID
	}
	return nil
}

// constrainedMedia reads Constrained-media: a well-known type as a
// Short-integer, or an Extension-media text.
func (r *reader) constrainedMedia() (string, error) {
	c, err := r.peek()
	if err != nil {
		return "", err
	}
	if c >= 0x80 {
		r.off++
		return contentTypeName(uint64(c & 0x7F)), nil
	}
	c, err = r.peek()
	if err != nil {
		return "", err
	}
	if c > 0 && c < 0x20 {
		return "", errBadToken
	}
	b, err := r.textBytes()
	if err != nil {
		return "", err
	}
	return mediaType(b), nil
}

// commonTypes are media types without a WSP code that MMS uses all the
// time: decoding them makes no new string.
var commonTypes = func() map[string]string {
	m := map[string]string{}
	for _, t := range []string{"application/smil", "audio/amr", "audio/amr-wb", "audio/mpeg", "audio/mp4",
		"audio/aac", "audio/3gpp", "audio/midi", "audio/x-wav", "audio/wav", "video/3gpp", "video/3gpp2",
		"video/mp4", "image/bmp", "image/webp", "image/heic", "image/heif", "text/x-vcard", "text/x-vcalendar",
		"text/vcard", "text/calendar", "application/octet-stream", "application/pdf"} {
		m[t] = t
	}
	return m
}()

// mediaType returns the lower-case media type b names, without a new
// string for a well-known or common one.
func mediaType(b []byte) string {
	if t, ok := commonTypes[string(b)]; ok {
		return t
	}
	if c, ok := contentTypeCodes[string(b)]; ok {
		return contentTypes[c]
	}
	return strings.ToLower(string(b))
}

// contentType reads a Content-type-value (WAP-230 §8.4.2.24):
//
//	Content-type-value   = Constrained-media | Content-general-form
//	Content-general-form = Value-length Media-type
//	Media-type           = (Well-known-media | Extension-Media) *(Parameter)
func (r *reader) contentType() (ContentType, error) {
	c, err := r.peek()
	if err != nil {
		return ContentType{}, err
	}
	if c >= 0x20 || c == 0 {
		t, err := r.constrainedMedia()
		return ContentType{Type: t}, err
	}
	s, err := r.sub()
	if err != nil {
		return ContentType{}, err
	}
	ct := ContentType{Params: make([]Param, 0, 4)}
	if c, err = s.peek(); err != nil {
		return ct, err
	}
	if c < 0x20 && c != 0 {
		code, err := s.integer()
		if err != nil {
			return ct, err
		}
		ct.Type = contentTypeName(code)
	} else if ct.Type, err = s.constrainedMedia(); err != nil {
		return ct, err
	}
	if s.strict && s.off == len(s.b) {
		if code, ok := contentTypeCode(ct.Type); !ok || code < 0x80 {
			return ct, errNonMinimal // the one-octet or text form would do
		}
	}
	for s.off < len(s.b) {
		p, err := s.param()
		if err != nil {
			return ct, err
		}
		ct.Params = append(ct.Params, p)
	}
	if len(ct.Params) == 0 {
		ct.Params = nil
	}
	return ct, nil
}

// param reads one Parameter:
//
//	Parameter = Typed-parameter | Untyped-parameter
//	Typed-parameter   = Well-known-parameter-token Typed-value
//	Untyped-parameter = Token-text Untyped-value
func (r *reader) param() (Param, error) {
	c, err := r.peek()
	if err != nil {
		return Param{}, err
	}
	if c < 0x80 {
		if c < 0x20 {
			return Param{}, errBadToken
		}
		name, err := r.text()
		if err != nil {
			return Param{}, err
		}
		p := Param{Name: strings.ToLower(name)}
		if c, err = r.peek(); err != nil {
			return p, err
		}
		if c >= 0x80 || (c >= 1 && c <= 30) {
			v, err := r.integer()
			p.Value = itoa(v)
			return p, err
		}
		p.Value, err = r.textValueForm()
		return p, err
	}
	r.off++
	code := c & 0x7F
	if int(code) >= len(paramTable) || paramTable[code].kind == pkRaw {
		raw, err := r.skipValue()
		return Param{Token: c, Value: string(raw)}, err
	}
	info := paramTable[code]
	p := Param{Name: info.name}
	if canonicalParam[info.name] != code {
		p.Token = c
	}
	switch info.kind {
	case pkCharset:
		if c, err = r.peek(); err != nil {
			return p, err
		}
		if c >= 0x20 && c < 0x80 { // a charset name as text, seen in the wild
			var t string
			t, err = r.text()
			p.Value = strings.ToLower(t)
			if _, ok := CharsetByName(p.Value); !ok {
				return p, errBadToken
			}
			return p, err
		}
		var cs Charset
		cs, err = r.charset()
		if cs == 0 {
			cs = CharsetAny
		}
		p.Value = cs.Name()
	case pkInteger:
		var v uint64
		v, err = r.integer()
		p.Value = itoa(v)
	case pkDate:
		var v uint64
		v, err = r.longInteger()
		p.Value = itoa(v)
	case pkText:
		p.Value, err = r.textValue()
	case pkTextValue:
		p.Value, err = r.textValueForm()
	case pkMedia:
		p.Value, err = r.constrainedMedia()
	}
	return p, err
}

// textValueForm reads a Text-value: No-value | Token-text | Quoted-string.
func (r *reader) textValueForm() (string, error) {
	c, err := r.peek()
	if err != nil {
		return "", err
	}
	switch {
	case c == 0:
		r.off++
		return "", nil
	case c == '"':
		r.off++
		return r.rawText()
	case c < 0x20:
		return "", errBadToken
	}
	return r.text()
}

// rawText reads octets up to a NUL, with no quote handling.
func (r *reader) rawText() (string, error) {
	i := bytes.IndexByte(r.b[r.off:], 0)
	if i < 0 {
		return "", errNoNUL
	}
	s := string(r.b[r.off : r.off+i])
	r.off += i + 1
	return s, nil
}

// decodeBody reads the Content-Type value and the body after it.
func (d Decoder) decodeBody(r *reader, m *Message) error {
	start := r.off
	ct, err := r.contentType()
	if err != nil {
		return &DecodeError{Offset: start, Field: FieldContentType.String(), Err: err}
	}
	if ct.Type == "" && d.Strict {
		// "84 00": no media type at all, which Append cannot tell from
		// an absent Content-Type.
		return &DecodeError{Offset: start, Field: FieldContentType.String(), Err: errBadToken}
	}
	m.ContentType = ct
	if !ct.IsMultipart() {
		if r.off < len(r.b) {
			m.Body = r.b[r.off:len(r.b):len(r.b)]
		}
		return nil
	}
	return d.decodeMultipart(r, m)
}

// decodeMultipart reads a WSP multipart body (WAP-230 §8.5):
//
//	Multipart = nEntries *Entry
//	Entry     = HeadersLen DataLen ContentType Headers Data
func (d Decoder) decodeMultipart(r *reader, m *Message) error {
	if r.off == len(r.b) {
		return nil // no body at all: as good as zero parts
	}
	start := r.off
	n, err := r.uintvar()
	if err != nil {
		return &DecodeError{Offset: start, Field: "multipart entry count", Err: err}
	}
	maxParts := d.MaxParts
	if maxParts <= 0 {
		maxParts = 1000
	}
	// Every entry takes at least 3 octets: bound the allocation by the input.
	if n > uint64(maxParts) || n > uint64(r.remaining()/3+1) {
		return &DecodeError{Offset: start, Field: "multipart entry count", Err: errTooMany}
	}
	m.Parts = make([]Part, 0, n)
	for i := 0; i < int(n); i++ {
		field := "part " + itoa(uint64(i+1))
		estart := r.off
		hl, err := r.uintvar()
		if err != nil {
			return &DecodeError{Offset: estart, Field: field + " HeadersLen", Err: err}
		}
		dstart := r.off
		dl, err := r.uintvar()
		if err != nil {
			return &DecodeError{Offset: dstart, Field: field + " DataLen", Err: err}
		}
		if hl > uint64(r.remaining()) {
			return &DecodeError{Offset: estart, Field: field + " HeadersLen", Err: errShort}
		}
		hr := &reader{b: r.b[:r.off+int(hl)], off: r.off, strict: d.Strict}
		r.off += int(hl)
		var p Part
		if err := hr.partHeaders(&p, field); err != nil {
			return err
		}
		if dl > uint64(r.remaining()) {
			// A sender that cut the last part short: lenient mode keeps
			// what there is of it.
			if d.Strict || i != int(n)-1 {
				return &DecodeError{Offset: dstart, Field: field + " DataLen", Err: errShort}
			}
			dl = uint64(r.remaining())
		}
		p.Body, _ = r.take(int(dl))
		m.Parts = append(m.Parts, p)
	}
	if r.off != len(r.b) && d.Strict {
		return &DecodeError{Offset: r.off, Field: "multipart", Err: errTrailing}
	}
	return nil
}

// partHeaders reads a part's Content-Type and headers.
func (r *reader) partHeaders(p *Part, field string) error {
	start := r.off
	ct, err := r.contentType()
	if err != nil {
		return &DecodeError{Offset: start, Field: field + " Content-Type", Err: err}
	}
	p.ContentType = ct
	var order []byte
	for r.off < len(r.b) {
		start := r.off
		c := r.b[r.off]
		if c >= 0x80 {
			r.off++
			switch c & 0x7F {
			case wspContentID:
				if r.off < len(r.b) && r.b[r.off] == '"' {
					r.off++
					p.ContentID, err = r.rawText()
				} else {
					p.ContentID, err = r.textValue()
				}
				order = append(order, 'i')
			case wspContentLocation:
				p.ContentLocation, err = r.textValue()
				order = append(order, 'l')
			default:
				var raw []byte
				raw, err = r.skipValue()
				p.Headers = append(p.Headers, Header{Code: c, Value: raw})
				order = append(order, 'h')
			}
			if err != nil {
				return &DecodeError{Offset: start, Field: field + " " + Header{Code: c}.HeaderName(), Err: err}
			}
			continue
		}
		if c < 0x20 {
			if r.strict {
				return &DecodeError{Offset: start, Field: field + " header", Err: errBadToken}
			}
			break // lenient: ignore what cannot be a header
		}
		name, err := r.text()
		if err != nil {
			return &DecodeError{Offset: start, Field: field + " header", Err: err}
		}
		val, err := r.textBytes()
		if err != nil {
			return &DecodeError{Offset: start, Field: field + " header " + name, Err: err}
		}
		p.Headers = append(p.Headers, Header{Name: name, Value: val})
		order = append(order, 'h')
	}
	if string(order) != p.canonicalOrder() {
		p.order = string(order)
	}
	return nil
}
