package pdu

import (
	"strings"
	"time"
)

// Message is one MMS PDU. The zero value of every header field means the
// header is absent. Repeated headers (To, Cc, Bcc, …) are slices in wire order.
type Message struct {
	Type          MessageType // X-Mms-Message-Type
	TransactionID string      // X-Mms-Transaction-ID
	Version       Version     // X-Mms-MMS-Version
	MessageID     string      // Message-ID
	Date          time.Time   // Date (UTC, whole seconds)
	From          *From       // From
	To            []EncodedString
	Cc            []EncodedString
	Bcc           []EncodedString
	Subject       EncodedString

	ContentLocation       string // X-Mms-Content-Location
	MessageClass          string // X-Mms-Message-Class: ClassPersonal … or a token
	MessageSize           uint64 // X-Mms-Message-Size, octets
	Priority              Priority
	DeliveryReport        YesNo
	ReadReport            YesNo // X-Mms-Read-Report (X-Mms-Read-Reply in 1.0)
	ReportAllowed         YesNo
	ResponseStatus        ResponseStatus
	ResponseText          EncodedString
	SenderVisibility      Visibility
	Status                Status
	Expiry                *TimeValue
	DeliveryTime          *TimeValue
	RetrieveStatus        RetrieveStatus
	RetrieveText          EncodedString
	ReadStatus            ReadStatus
	ReplyCharging         ReplyCharging
	ReplyChargingDeadline *TimeValue
	ReplyChargingID       string
	ReplyChargingSize     uint64
	PreviouslySentBy      []PreviouslySentBy
	PreviouslySentDate    []PreviouslySentDate

	// MMS 1.2 MMBox headers.
	Store                 YesNo
	MMState               MMState
	MMFlags               []MMFlag
	StoreStatus           StoreStatus
	StoreStatusText       EncodedString
	Stored                YesNo
	Attributes            []Field
	Totals                YesNo
	MboxTotals            []Quantity
	Quotas                YesNo
	MboxQuotas            []Quantity
	MessageCount          *uint64
	Start                 *uint64
	DistributionIndicator YesNo
	ElementDescriptors    []ElementDescriptor
	Limit                 *uint64

	// MMS 1.3 headers.
	RecommendedRetrievalMode     RetrievalMode
	RecommendedRetrievalModeText EncodedString
	StatusText                   EncodedString
	ApplicID                     string
	ReplyApplicID                string
	AuxApplicInfo                string
	ContentClass                 ContentClass
	DRMContent                   YesNo
	AdaptationAllowed            YesNo
	ReplaceID                    string
	CancelID                     string
	CancelStatus                 CancelStatus

	// Unknown holds, in order, the headers this package does not know, and
	// in lenient mode those whose value did not have the expected form.
	Unknown []Header

	// Order is the order in which a decoded message's headers came, when it
	// differs from the order Append would choose (nil otherwise). Each entry
	// names a field; repeated fields appear once per value and FieldUnknown
	// stands for the next entry of Unknown. Append writes the headers in
	// Order, then any non-zero field Order does not mention. A field in Order
	// is written even when its value is zero (that is how a decoded empty
	// Message-ID survives); set Order to nil to drop such headers.
	// Content-Type is never in Order: it is always last.
	Order []Field

	// ContentType is the message's Content-Type. Its Type is "" for PDUs
	// without a body.
	ContentType ContentType

	// Parts is the multipart body, when ContentType is a multipart type.
	Parts []Part

	// Body is the body of a PDU whose Content-Type is not multipart. It
	// aliases the decoded input.
	Body []byte
}

// EncodedString is an Encoded-string-value (OMA-MMS-ENC §7.2.9): text in a
// character set. Charset 0 means none was given (the plain Text-string form);
// Text holds the bytes as sent, in that character set.
type EncodedString struct {
	Charset Charset
	Text    string
}

// Str returns an EncodedString for s: plain when s is ASCII, UTF-8 otherwise.
func Str(s string) EncodedString {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return EncodedString{Charset: CharsetUTF8, Text: s}
		}
	}
	return EncodedString{Text: s}
}

// IsZero reports whether e is the zero value (absent).
func (e EncodedString) IsZero() bool { return e.Charset == 0 && e.Text == "" }

// String returns the text as UTF-8 (see Charset.Decode).
func (e EncodedString) String() string { return e.Charset.Decode([]byte(e.Text)) }

// From is the value of the From header: an address, or the
// Insert-address-token by which the sender asks the MMSC to fill it in.
type From struct {
	Insert  bool
	Address EncodedString
}

// TimeValue is the value of X-Mms-Expiry, X-Mms-Delivery-Time and
// X-Mms-Reply-Charging-Deadline: an absolute date or a relative number of
// seconds.
type TimeValue struct {
	Relative bool
	Seconds  uint64 // seconds since 1970-01-01 UTC if absolute, delta otherwise
}

// Absolute returns an absolute TimeValue for t.
func Absolute(t time.Time) *TimeValue { return &TimeValue{Seconds: uint64(t.Unix())} }

// Relative returns a relative TimeValue for d (whole seconds).
func Relative(d time.Duration) *TimeValue {
	return &TimeValue{Relative: true, Seconds: uint64(d / time.Second)}
}

// Time returns the absolute time of v, counting a relative value from now.
func (v TimeValue) Time(now time.Time) time.Time {
	if v.Relative {
		return now.Add(time.Duration(v.Seconds) * time.Second)
	}
	return time.Unix(int64(v.Seconds), 0).UTC()
}

// PreviouslySentBy is one X-Mms-Previously-Sent-By value.
type PreviouslySentBy struct {
	Count   uint64
	Address EncodedString
}

// PreviouslySentDate is one X-Mms-Previously-Sent-Date value.
type PreviouslySentDate struct {
	Count uint64
	Date  time.Time
}

// MMFlag is one X-Mms-MM-Flags value.
type MMFlag struct {
	Op   byte // 0x80 add, 0x81 remove, 0x82 filter
	Flag EncodedString
}

// Quantity is an X-Mms-Mbox-Totals or X-Mms-Mbox-Quotas value.
type Quantity struct {
	Size  bool // false: number of messages (0x80), true: octets (0x81)
	Value uint64
}

// ElementDescriptor is an X-Mms-Element-Descriptor value.
type ElementDescriptor struct {
	Reference string
	Params    []Param // "type" carries the media type
}

// Header is a header kept as it came: a well-known header with a raw value,
// or a textual (application) header.
type Header struct {
	// Code is the header's wire octet (0x80 | code) for a well-known header,
	// 0 for a textual header.
	Code byte
	// Name is the textual header's name.
	Name string
	// Value is the raw value octets for a well-known header (written back
	// verbatim; it aliases the decoded input), or the text of a textual one.
	Value []byte
}

// Part is one entry of a multipart body.
type Part struct {
	ContentType     ContentType
	ContentID       string // as sent, normally "<id>"
	ContentLocation string
	// Headers holds the part's other headers, in order.
	Headers []Header
	// Body is the part's data. A decoded part's Body aliases the input.
	Body []byte

	// order is the decoded header order when it differs from the one
	// Append would choose: 'i' Content-ID, 'l' Content-Location, 'h' the
	// next of Headers.
	order string
}

// ContentType is a Content-type-value: a media type with parameters.
type ContentType struct {
	// Type is the lower-case media type, e.g. "image/jpeg". A well-known
	// code this package has no name for reads as "application/x-wsp-0xNNNN".
	Type   string
	Params []Param
}

// Param returns the value of the parameter named name ("" if absent).
func (c ContentType) Param(name string) string {
	for _, p := range c.Params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// IsMultipart reports whether the type is a multipart type, whose body is a
// WSP multipart.
func (c ContentType) IsMultipart() bool {
	return strings.HasPrefix(c.Type, "application/vnd.wap.multipart.") || strings.HasPrefix(c.Type, "multipart/")
}

// Param is one Content-Type parameter.
type Param struct {
	// Name is the lower-case parameter name: "charset", "name", "type",
	// "start", … For a well-known parameter code this package cannot read,
	// Name is "" and Value holds the raw value octets.
	Name string
	// Value is the value as text. A charset is its IANA name ("utf-8"), a
	// number or date is in decimal.
	Value string
	// Token is the well-known parameter octet a decoded parameter used when
	// it is not the one Append would choose (WSP 1.4 "name" 0x97 rather than
	// 0x85, say); 0 otherwise.
	Token byte
}

// Text returns the part's body as UTF-8 when the part is text/*, decoding
// its charset parameter (none: UTF-8 if valid, else ISO-8859-1).
func (p *Part) Text() (string, bool) {
	if !strings.HasPrefix(p.ContentType.Type, "text/") {
		return "", false
	}
	cs := p.ContentType.Param("charset")
	c, _ := CharsetByName(cs)
	return c.Decode(p.Body), true
}

// Name returns the part's file name: the name or filename parameter, else
// its Content-Location.
func (p *Part) Name() string {
	if n := p.ContentType.Param("name"); n != "" {
		return n
	}
	if n := p.ContentType.Param("filename"); n != "" {
		return n
	}
	return p.ContentLocation
}

// Disposition returns the part's Content-Disposition ("attachment",
// "inline", "form-data" or the token sent) and its parameters, read from
// Headers (WSP codes 0x2E and 0x45, or a textual header).
func (p *Part) Disposition() (string, []Param) {
	for _, h := range p.Headers {
		switch {
		case h.Code == 0x80|0x2E || h.Code == 0x80|0x45:
			r := &reader{b: h.Value}
			s, err := r.sub()
			if err != nil {
				return "", nil
			}
			var disp string
			c, err := s.peek()
			if err != nil {
				return "", nil
			}
			if c >= 0x80 {
				s.off++
				switch c {
				case 0x80:
					disp = "form-data"
				case 0x81:
					disp = "attachment"
				case 0x82:
					disp = "inline"
				}
			} else if disp, err = s.textValue(); err != nil {
				return "", nil
			}
			var params []Param
			for s.off < len(s.b) {
				prm, err := s.param()
				if err != nil {
					break
				}
				params = append(params, prm)
			}
			return strings.ToLower(disp), params
		case h.Code == 0 && strings.EqualFold(h.Name, "Content-Disposition"):
			v := string(h.Value)
			disp, _, _ := strings.Cut(v, ";")
			return strings.ToLower(strings.TrimSpace(disp)), nil
		}
	}
	return "", nil
}
