package pdu

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// count returns how many values of field f m holds (0 or 1 for a single
// field).
func (m *Message) count(f Field) int {
	switch f {
	case FieldTo:
		return len(m.To)
	case FieldCc:
		return len(m.Cc)
	case FieldBcc:
		return len(m.Bcc)
	case FieldPreviouslySentBy:
		return len(m.PreviouslySentBy)
	case FieldPreviouslySentDate:
		return len(m.PreviouslySentDate)
	case FieldMMFlags:
		return len(m.MMFlags)
	case FieldAttributes:
		return len(m.Attributes)
	case FieldMboxTotals:
		return len(m.MboxTotals)
	case FieldMboxQuotas:
		return len(m.MboxQuotas)
	case FieldElementDescriptor:
		return len(m.ElementDescriptors)
	case FieldUnknown:
		return len(m.Unknown)
	case FieldContentType, FieldContent, FieldAdditionalHeaders:
		return 0
	}
	if m.isZero(f) {
		return 0
	}
	return 1
}

// isZero reports whether single-valued field f is unset.
func (m *Message) isZero(f Field) bool {
	switch f {
	case FieldMessageType:
		return m.Type == 0
	case FieldMMSVersion:
		return m.Version == 0
	case FieldDate:
		return m.Date.IsZero()
	case FieldFrom:
		return m.From == nil
	case FieldMessageSize:
		return m.MessageSize == 0
	case FieldReplyChargingSize:
		return m.ReplyChargingSize == 0
	case FieldPriority:
		return m.Priority == 0
	case FieldResponseStatus:
		return m.ResponseStatus == 0
	case FieldRetrieveStatus:
		return m.RetrieveStatus == 0
	case FieldStatus:
		return m.Status == 0
	case FieldSenderVisibility:
		return m.SenderVisibility == 0
	case FieldReadStatus:
		return m.ReadStatus == 0
	case FieldReplyCharging:
		return m.ReplyCharging == 0
	case FieldMMState:
		return m.MMState == 0
	case FieldStoreStatus:
		return m.StoreStatus == 0
	case FieldContentClass:
		return m.ContentClass == 0
	case FieldRecommendedRetrievalMode:
		return m.RecommendedRetrievalMode == 0
	case FieldCancelStatus:
		return m.CancelStatus == 0
	case FieldExpiry:
		return m.Expiry == nil
	case FieldDeliveryTime:
		return m.DeliveryTime == nil
	case FieldReplyChargingDeadline:
		return m.ReplyChargingDeadline == nil
	case FieldMessageCount:
		return m.MessageCount == nil
	case FieldStart:
		return m.Start == nil
	case FieldLimit:
		return m.Limit == nil
	}
	if p := m.yesNo(f); p != nil {
		return *p == 0
	}
	if p := m.encoded(f); p != nil {
		return p.IsZero()
	}
	if p := m.textField(f); p != nil {
		return *p == ""
	}
	return true
}

// appendOrder appends the canonical header sequence of m to dst: the one
// Append uses when Order is nil.
func (m *Message) appendOrder(dst []Field) []Field {
	for _, f := range leading {
		for n := m.count(f); n > 0; n-- {
			dst = append(dst, f)
		}
	}
	for f := Field(1); f < 64; f++ {
		if !isLeading[f] {
			for n := m.count(f); n > 0; n-- {
				dst = append(dst, f)
			}
		}
	}
	for n := len(m.Unknown); n > 0; n-- {
		dst = append(dst, FieldUnknown)
	}
	return dst
}

// Append appends the encoded PDU to b and returns the extended buffer.
// It fails on values that have no encoding: a missing message type, a NUL
// inside a text, an unknown charset name, a number where none can go.
func (m *Message) Append(b []byte) ([]byte, error) {
	if m.Type == 0 {
		return b, errors.New("pdu: encoding: message has no type")
	}
	e := enc{b: b}
	need := 256 + 64*len(m.Parts) + len(m.Body)
	for i := range m.Parts {
		need += len(m.Parts[i].Body)
	}
	e.b = slices.Grow(e.b, need)

	var scratch [48]Field
	order := m.Order
	if order == nil {
		order = m.appendOrder(scratch[:0])
	}
	var idx [64]int // next value of each repeated field; [0] for Unknown
	var written [64]bool
	for _, f := range order {
		if f >= 64 || f == FieldContentType {
			continue
		}
		m.writeNext(&e, f, &idx, &written, m.Order != nil)
	}
	if m.Order != nil {
		// Fields added after decoding, that Order does not mention.
		rest := m.appendOrder(scratch[:0])
		for _, f := range rest {
			if repeatable(f) || f == FieldUnknown {
				if idx[f] < m.count(f) {
					m.writeNext(&e, f, &idx, &written, false)
				}
			} else if !written[f] {
				m.writeNext(&e, f, &idx, &written, false)
			}
		}
	}
	// A body is written even under an empty Content-Type (a decoded "84 00"),
	// rather than dropped.
	if m.ContentType.Type != "" || len(m.ContentType.Params) > 0 || len(m.Body) > 0 {
		e.b = append(e.b, 0x80|byte(FieldContentType))
		e.contentType(FieldContentType.String(), m.ContentType)
		if m.ContentType.IsMultipart() {
			e.b = appendUintvar(e.b, uint64(len(m.Parts)))
			for i := range m.Parts {
				e.part(i, &m.Parts[i])
			}
		} else {
			e.b = append(e.b, m.Body...)
		}
	}
	if e.err != nil {
		return b, e.err
	}
	return e.b, nil
}

// Encode returns the encoded PDU in a new buffer.
func (m *Message) Encode() ([]byte, error) { return m.Append(nil) }

// writeNext writes the next value of field f. With keepZero, a text field
// whose value is empty is still written (a decoded empty header).
func (m *Message) writeNext(e *enc, f Field, idx *[64]int, written *[64]bool, keepZero bool) {
	if repeatable(f) || f == FieldUnknown {
		i := idx[f]
		if i >= m.count(f) {
			return
		}
		idx[f]++
		m.writeField(e, f, i)
		return
	}
	// Sizes too: a decoded "X-Mms-Message-Size: 0" (8e 01 00) must survive.
	if m.isZero(f) && !(keepZero && keepsEmpty(f)) {
		return
	}
	written[f] = true
	m.writeField(e, f, 0)
}

func (m *Message) writeField(e *enc, f Field, i int) {
	if f == FieldUnknown {
		h := m.Unknown[i]
		if h.Code != 0 {
			e.b = append(e.b, h.Code)
			e.b = append(e.b, h.Value...)
			return
		}
		e.token("application header", h.Name)
		e.text(h.Name, string(h.Value))
		return
	}
	name := f.String()
	e.b = append(e.b, 0x80|byte(f))
	switch f {
	case FieldMessageType:
		e.b = append(e.b, byte(m.Type))
	case FieldMMSVersion:
		e.b = append(e.b, byte(m.Version))
	case FieldDate:
		e.b = appendLongInteger(e.b, unixSeconds(m.Date))
	case FieldFrom:
		if m.From.Insert {
			e.b = append(e.b, 1, 0x81)
			return
		}
		e.b = appendValueLength(e.b, 1+encodedStringLen(m.From.Address))
		e.b = append(e.b, 0x80)
		e.encodedString(name, m.From.Address)
	case FieldTo:
		e.encodedString(name, m.To[i])
	case FieldCc:
		e.encodedString(name, m.Cc[i])
	case FieldBcc:
		e.encodedString(name, m.Bcc[i])
	case FieldMessageClass:
		for j, t := range messageClassTokens {
			if m.MessageClass == t {
				e.b = append(e.b, 0x80|byte(j))
				return
			}
		}
		e.textValue(name, m.MessageClass)
	case FieldMessageSize:
		e.b = appendLongInteger(e.b, m.MessageSize)
	case FieldReplyChargingSize:
		e.b = appendLongInteger(e.b, m.ReplyChargingSize)
	case FieldPriority:
		e.b = append(e.b, byte(m.Priority))
	case FieldResponseStatus:
		e.b = append(e.b, byte(m.ResponseStatus))
	case FieldRetrieveStatus:
		e.b = append(e.b, byte(m.RetrieveStatus))
	case FieldStatus:
		e.b = append(e.b, byte(m.Status))
	case FieldSenderVisibility:
		e.b = append(e.b, byte(m.SenderVisibility))
	case FieldReadStatus:
		e.b = append(e.b, byte(m.ReadStatus))
	case FieldReplyCharging:
		e.b = append(e.b, byte(m.ReplyCharging))
	case FieldMMState:
		e.b = append(e.b, byte(m.MMState))
	case FieldStoreStatus:
		e.b = append(e.b, byte(m.StoreStatus))
	case FieldContentClass:
		e.b = append(e.b, byte(m.ContentClass))
	case FieldRecommendedRetrievalMode:
		e.b = append(e.b, byte(m.RecommendedRetrievalMode))
	case FieldCancelStatus:
		e.b = append(e.b, byte(m.CancelStatus))
	case FieldExpiry:
		e.timeValue(m.Expiry)
	case FieldDeliveryTime:
		e.timeValue(m.DeliveryTime)
	case FieldReplyChargingDeadline:
		e.timeValue(m.ReplyChargingDeadline)
	case FieldPreviouslySentBy:
		v := m.PreviouslySentBy[i]
		e.b = appendValueLength(e.b, integerLen(v.Count)+encodedStringLen(v.Address))
		e.b = appendInteger(e.b, v.Count)
		e.encodedString(name, v.Address)
	case FieldPreviouslySentDate:
		v := m.PreviouslySentDate[i]
		d := unixSeconds(v.Date)
		e.b = appendValueLength(e.b, integerLen(v.Count)+longIntegerLen(d))
		e.b = appendInteger(e.b, v.Count)
		e.b = appendLongInteger(e.b, d)
	case FieldMMFlags:
		v := m.MMFlags[i]
		e.b = appendValueLength(e.b, 1+encodedStringLen(v.Flag))
		e.b = append(e.b, v.Op)
		e.encodedString(name, v.Flag)
	case FieldAttributes:
		e.b = append(e.b, 0x80|byte(m.Attributes[i]))
	case FieldMboxTotals, FieldMboxQuotas:
		q := m.MboxTotals
		if f == FieldMboxQuotas {
			q = m.MboxQuotas
		}
		v := q[i]
		tok := byte(0x80)
		if v.Size {
			tok = 0x81
		}
		e.b = appendValueLength(e.b, 1+integerLen(v.Value))
		e.b = append(e.b, tok)
		e.b = appendInteger(e.b, v.Value)
	case FieldMessageCount:
		e.b = appendInteger(e.b, *m.MessageCount)
	case FieldStart:
		e.b = appendInteger(e.b, *m.Start)
	case FieldLimit:
		e.b = appendInteger(e.b, *m.Limit)
	case FieldElementDescriptor:
		v := m.ElementDescriptors[i]
		e.withLength(func() {
			e.textValue(name, v.Reference)
			for _, p := range v.Params {
				if p.Name == "type" {
					e.b = append(e.b, 0x82)
					e.constrainedMedia(name, p.Value)
					continue
				}
				e.token(name, p.Name)
				e.text(name, p.Value)
			}
		})
	default:
		if p := m.yesNo(f); p != nil {
			e.b = append(e.b, byte(*p))
		} else if p := m.encoded(f); p != nil {
			e.encodedString(name, *p)
		} else if p := m.textField(f); p != nil {
			e.textValue(name, *p)
		} else {
			e.fail(name, errBadToken)
		}
	}
}

func unixSeconds(t time.Time) uint64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return uint64(s)
}

func (e *enc) timeValue(v *TimeValue) {
	if v.Relative {
		e.b = appendValueLength(e.b, 1+longIntegerLen(v.Seconds))
		e.b = append(e.b, 0x81)
	} else {
		e.b = appendValueLength(e.b, 1+longIntegerLen(v.Seconds))
		e.b = append(e.b, 0x80)
	}
	// Delta-seconds as a Long-integer: the form Wireshark and Android read.
	e.b = appendLongInteger(e.b, v.Seconds)
}

func (e *enc) constrainedMedia(field, t string) {
	if code, ok := contentTypeCode(strings.ToLower(t)); ok && code < 0x80 {
		e.b = append(e.b, 0x80|byte(code))
		return
	}
	e.textValue(field, t)
}

// contentType writes a Content-type-value: the one-octet or text form when
// there are no parameters, the general form otherwise.
func (e *enc) contentType(field string, ct ContentType) {
	code, wk := contentTypeCode(strings.ToLower(ct.Type))
	if len(ct.Params) == 0 && (!wk || code < 0x80) {
		e.constrainedMedia(field, ct.Type)
		return
	}
	e.withLength(func() {
		if wk {
			e.b = appendInteger(e.b, code)
		} else {
			e.textValue(field, ct.Type)
		}
		for _, p := range ct.Params {
			e.param(field, p)
		}
	})
}

func (e *enc) param(field string, p Param) {
	if p.Name == "" {
		// A raw well-known parameter: its token must be one.
		if p.Token < 0x80 {
			e.fail(field, fmt.Errorf("parameter without a name or a token"))
			return
		}
		e.b = append(e.b, p.Token)
		e.b = append(e.b, p.Value...)
		return
	}
	code, ok := canonicalParam[strings.ToLower(p.Name)]
	if p.Token != 0 {
		code, ok = p.Token&0x7F, true
		if int(code) >= len(paramTable) || paramTable[code].name != p.Name {
			e.fail(field, fmt.Errorf("parameter %q with token 0x%02X", p.Name, p.Token))
			return
		}
	}
	if !ok {
		// Untyped-parameter: Token-text Text-value.
		e.textValue(field, p.Name)
		e.textValueForm(field, p.Value)
		return
	}
	e.b = append(e.b, 0x80|code)
	switch paramTable[code].kind {
	case pkCharset:
		c, ok := CharsetByName(p.Value)
		if !ok || c == 0 {
			e.fail(field, fmt.Errorf("unknown charset %q", p.Value))
			return
		}
		e.charset(field, c)
	case pkInteger, pkDate:
		v, err := strconv.ParseUint(p.Value, 10, 64)
		if err != nil {
			e.fail(field, fmt.Errorf("parameter %s=%q is not a number", p.Name, p.Value))
			return
		}
		if paramTable[code].kind == pkDate {
			e.b = appendLongInteger(e.b, v)
		} else {
			e.b = appendInteger(e.b, v)
		}
	case pkText:
		e.textValue(field, p.Value)
	case pkTextValue:
		e.textValueForm(field, p.Value)
	case pkMedia:
		// The multipart/related type as text, even when it has a
		// well-known code: the form every handset composer writes and
		// every parser reads.
		e.text(field, p.Value)
	}
}

// token writes a Token-text: a header or parameter name.
func (e *enc) token(field, s string) {
	if s == "" || !isToken(s) {
		e.fail(field, fmt.Errorf("name %q is not a token", s))
		return
	}
	e.text(field, s)
}

// textValueForm writes a Text-value: No-value for "", Token-text for a
// token, a Quoted-string otherwise.
func (e *enc) textValueForm(field, s string) {
	if s == "" {
		e.b = append(e.b, 0)
		return
	}
	if isToken(s) {
		e.text(field, s)
		return
	}
	e.b = append(e.b, '"')
	e.rawText(field, s)
}

func (e *enc) rawText(field, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			e.fail(field, errNUL)
			return
		}
	}
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
}

// isToken reports whether s is an RFC 2616 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7F {
			return false
		}
		switch c {
		case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=', '{', '}':
			return false
		}
	}
	return true
}

// part writes one multipart entry. HeadersLen is known only once the
// headers are written: they are written after room for both lengths, then
// moved back.
func (e *enc) part(i int, p *Part) {
	// Error labels name the part only when there is an error: building
	// them for every part costs more than the rest of the headers.
	e.partNo = i + 1
	defer func() { e.partNo = 0 }()
	const reserve = 10
	start := len(e.b)
	e.b = append(e.b, make([]byte, reserve)...)
	hstart := len(e.b)
	e.contentType("Content-Type", p.ContentType)
	id := func() {
		if p.ContentID != "" {
			e.b = append(e.b, 0x80|wspContentID, '"')
			e.rawText("Content-ID", p.ContentID)
		}
	}
	loc := func() {
		if p.ContentLocation != "" {
			e.b = append(e.b, 0x80|wspContentLocation)
			e.textValue("Content-Location", p.ContentLocation)
		}
	}
	hdr := func(h Header) {
		if h.Code != 0 {
			e.b = append(e.b, h.Code)
			e.b = append(e.b, h.Value...)
			return
		}
		e.token("header", h.Name)
		e.text(h.Name, string(h.Value))
	}
	order := p.order
	if order == "" {
		order = p.canonicalOrder()
	}
	hi, didID, didLoc := 0, false, false
	for i := 0; i < len(order); i++ {
		switch order[i] {
		case 'i':
			if !didID {
				id()
				didID = true
			}
		case 'l':
			if !didLoc {
				loc()
				didLoc = true
			}
		case 'h':
			if hi < len(p.Headers) {
				hdr(p.Headers[hi])
				hi++
			}
		}
	}
	if !didID {
		id()
	}
	if !didLoc {
		loc()
	}
	for ; hi < len(p.Headers); hi++ {
		hdr(p.Headers[hi])
	}
	hl := len(e.b) - hstart
	var lens [reserve]byte
	h := appendUintvar(lens[:0], uint64(hl))
	h = appendUintvar(h, uint64(len(p.Body)))
	copy(e.b[start:], h)
	copy(e.b[start+len(h):], e.b[hstart:])
	e.b = e.b[:len(e.b)-(reserve-len(h))]
	e.b = append(e.b, p.Body...)
}

// canonicalOrder is the part header order Append uses: Content-ID,
// Content-Location, then the other headers.
func (p *Part) canonicalOrder() string {
	var b []byte
	if p.ContentID != "" {
		b = append(b, 'i')
	}
	if p.ContentLocation != "" {
		b = append(b, 'l')
	}
	for range p.Headers {
		b = append(b, 'h')
	}
	return string(b)
}

type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return "pdu: " + e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// mandatory lists, per PDU type, the headers OMA-MMS-ENC requires. A
// FieldTo entry for m-send-req and m-forward-req is met by any of To, Cc
// and Bcc.
var mandatory = map[MessageType][]Field{
	TypeSendReq:         {FieldTransactionID, FieldMMSVersion, FieldFrom, FieldTo, FieldContentType},
	TypeSendConf:        {FieldTransactionID, FieldMMSVersion, FieldResponseStatus},
	TypeNotificationInd: {FieldTransactionID, FieldMMSVersion, FieldMessageClass, FieldMessageSize, FieldExpiry, FieldContentLocation},
	TypeNotifyRespInd:   {FieldTransactionID, FieldMMSVersion, FieldStatus},
	TypeRetrieveConf:    {FieldMMSVersion, FieldDate, FieldContentType},
	TypeAcknowledgeInd:  {FieldTransactionID, FieldMMSVersion},
	TypeDeliveryInd:     {FieldMMSVersion, FieldMessageID, FieldTo, FieldDate, FieldStatus},
	TypeReadRecInd:      {FieldMMSVersion, FieldMessageID, FieldTo, FieldFrom, FieldReadStatus},
	TypeReadOrigInd:     {FieldMMSVersion, FieldMessageID, FieldTo, FieldFrom, FieldDate, FieldReadStatus},
	TypeForwardReq:      {FieldTransactionID, FieldMMSVersion, FieldFrom, FieldTo, FieldContentLocation},
	TypeForwardConf:     {FieldTransactionID, FieldMMSVersion, FieldResponseStatus},
	TypeCancelReq:       {FieldTransactionID, FieldMMSVersion, FieldCancelID},
	TypeCancelConf:      {FieldTransactionID, FieldMMSVersion, FieldCancelStatus},
}

// Validate reports the first mandatory header that m, for its type, lacks.
// PDU types without a rule need Transaction-ID and MMS-Version.
func (m *Message) Validate() error {
	need, ok := mandatory[m.Type]
	if !ok {
		need = []Field{FieldTransactionID, FieldMMSVersion}
	}
	if m.Type == 0 {
		return &fieldError{FieldMessageType.String(), errMissing}
	}
	for _, f := range need {
		var have bool
		switch {
		case f == FieldContentType:
			have = m.ContentType.Type != ""
		case f == FieldTo && (m.Type == TypeSendReq || m.Type == TypeForwardReq):
			have = len(m.To)+len(m.Cc)+len(m.Bcc) > 0
		default:
			have = m.count(f) > 0 || (m.Order != nil && slices.Contains(m.Order, f))
		}
		if !have {
			return &fieldError{f.String(), errMissing}
		}
	}
	return nil
}
