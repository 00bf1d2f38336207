package mm4

import (
	"strings"
	"time"

	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// RecipientForm is how ForwardOptions writes a recipient's number in the
// To header field (and, for the MM3 forms, the SMTP recipient as well).
type RecipientForm uint8

// Recipient forms.
const (
	// FormPLMN is "+15551234567/TYPE=PLMN", the MM4 form.
	FormPLMN RecipientForm = iota
	// FormGateway is "15551234567@<GatewayDomain>": the MM3 form, the
	// digits alone, as carriers' email gateways expect.
	FormGateway
	// FormGatewayE164 is "+15551234567@<GatewayDomain>": the MM3 form
	// with the number's "+".
	FormGatewayE164
)

// ForwardOptions is what NewForward needs beside the PDU: the identifiers,
// the addresses and the route's choices. The zero value builds an
// MM4_forward.REQ with the PDU's own identifiers and addresses.
type ForwardOptions struct {
	// TransactionID is the X-Mms-Transaction-ID; empty uses the PDU's.
	TransactionID string
	// MessageID is the X-Mms-Message-ID and the mail's Message-ID; empty
	// uses the PDU's.
	MessageID string
	// From is the originator ("+15551234567/TYPE=PLMN" or a mail address);
	// empty uses the PDU's From (none when the PDU asks the MMSC to insert
	// it).
	From string
	// Sender is the RFC 5322 Sender ("" writes none).
	Sender string

	// Recipients are E.164 numbers ("+15551234567"), written in To in
	// Form. Nil writes the PDU's To and Cc as they are.
	Recipients []string
	// Form is how Recipients are written: FormPLMN (default) for MM4, a
	// gateway form with GatewayDomain for MM3.
	Form          RecipientForm
	GatewayDomain string
	// Bcc writes no To and Cc: no copy may show the other recipients.
	Bcc bool

	// AckRequest asks the peer for an MM4_forward.RES.
	AckRequest bool
	// OriginatorSystem is where the peer sends .RES and reports.
	OriginatorSystem string
	// Plain builds the MM3 form: an ordinary MIME mail without X-Mms
	// header fields (see Forward.Plain).
	Plain bool

	// Now is the Date when the PDU has none (zero: time.Now()).
	Now time.Time
}

// Address writes the number e164 ("+15551234567") in o's Form.
func (o *ForwardOptions) Address(e164 string) string {
	switch o.Form {
	case FormGateway:
		return strings.TrimPrefix(e164, "+") + "@" + o.GatewayDomain
	case FormGatewayE164:
		return e164 + "@" + o.GatewayDomain
	}
	return e164 + "/TYPE=PLMN"
}

// NewForward builds the MM4_forward.REQ of m (or, with opts.Plain, the MM3
// mail): the one builder of the relay, used both to size a message and to
// send it, so that what is measured is what is sent. Pass the result to
// WriteForward. The parts alias m's.
//
// From the PDU come the subject, date, expiry (relative to the date),
// message class, priority, delivery and read report requests and the
// content; a PDU whose body is not multipart becomes one part of a
// multipart/mixed.
func NewForward(m *pdu.Message, opts ForwardOptions) *Forward {
	f := &Forward{
		TransactionID:    orDefault(opts.TransactionID, m.TransactionID),
		MessageID:        orDefault(opts.MessageID, m.MessageID),
		From:             opts.From,
		Sender:           opts.Sender,
		Subject:          m.Subject.String(),
		Date:             m.Date,
		DeliveryReport:   m.DeliveryReport == pdu.Yes,
		ReadReply:        m.ReadReport == pdu.Yes,
		AckRequest:       opts.AckRequest,
		OriginatorSystem: opts.OriginatorSystem,
		Plain:            opts.Plain,
		ContentType:      m.ContentType,
		Parts:            m.Parts,
	}
	if f.From == "" && m.From != nil && !m.From.Insert {
		f.From = m.From.Address.String()
	}
	if f.Date.IsZero() {
		f.Date = opts.Now
		if f.Date.IsZero() {
			f.Date = time.Now()
		}
	}
	switch {
	case opts.Bcc:
	case opts.Recipients != nil:
		for _, n := range opts.Recipients {
			f.To = append(f.To, opts.Address(n))
		}
	default:
		for _, a := range m.To {
			f.To = append(f.To, a.String())
		}
		for _, a := range m.Cc {
			f.Cc = append(f.Cc, a.String())
		}
	}
	switch m.MessageClass {
	case pdu.ClassPersonal, "":
		f.MessageClass = "Personal"
	case pdu.ClassAdvertisement:
		f.MessageClass = "Advertisement"
	case pdu.ClassInformational:
		f.MessageClass = "Informational"
	case pdu.ClassAuto:
		f.MessageClass = "Auto"
	}
	switch m.Priority {
	case pdu.PriorityLow:
		f.Priority = "Low"
	case pdu.PriorityHigh:
		f.Priority = "High"
	case pdu.PriorityNormal:
		f.Priority = "Normal"
	}
	if m.Expiry != nil {
		f.Expiry = m.Expiry.Time(f.Date)
	}
	if len(m.Parts) == 0 && len(m.Body) > 0 {
		f.ContentType = pdu.ContentType{Type: "application/vnd.wap.multipart.mixed"}
		f.Parts = []pdu.Part{{ContentType: m.ContentType, Body: m.Body}}
	}
	return f
}
