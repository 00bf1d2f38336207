package deliver

import (
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// MM4 delivers to a peer MMSC as MM4_forward.REQ over SMTP.
type MM4 struct {
	Peer *SMTPPeer
	// Domain is the peer's MMS domain: recipients become
	// "+15551234567/TYPE=PLMN@<Domain>".
	Domain string
	// OriginatorSystem is our system address, where the peer sends
	// MM4_forward.RES and delivery reports (X-Mms-Originator-System).
	OriginatorSystem string
	// LocalDomain is our MMS domain, for the Sender of phone originators.
	LocalDomain string
	// AckRequest asks the peer for an MM4_forward.RES. The recipients the
	// peer accepts are then Awaiting, not Delivered: the .RES confirms or
	// refuses them later.
	AckRequest bool
}

// buildMM4 is the registry's builder of "mm4" routes.
func buildMM4(rc config.Route, env Env) (Route, error) {
	return &MM4{Peer: routePeer(rc, env), Domain: rc.Domain, OriginatorSystem: env.OriginatorSystem,
		LocalDomain: env.LocalDomain, AckRequest: rc.AckRequest}, nil
}

// Carries returns mapping.InterfaceMM4.
func (r *MM4) Carries() mapping.Interface { return mapping.InterfaceMM4 }

// Deliver sends m in one SMTP transaction, one RCPT per number. A
// recipient the peer took is Delivered, or Awaiting when AckRequest asks
// the peer to answer with an MM4_forward.RES.
func (r *MM4) Deliver(ctx context.Context, m *Message) []Result {
	var buf bytes.Buffer
	f := Forward(m, r.AckRequest, r.OriginatorSystem)
	f.Sender = envelopeFrom(m, r.LocalDomain)
	if err := mm4.WriteForward(&buf, f); err != nil {
		return all(m, Result{Outcome: Bounce, Reason: "cannot write the MM4 message: " + err.Error()})
	}
	rcpts := make([]string, len(m.Recipients))
	for i, n := range m.Recipients {
		rcpts[i] = n + "/TYPE=PLMN@" + r.Domain
	}
	res := r.Peer.send(ctx, f.Sender, rcpts, buf.Bytes())
	for i := range res.rcpt {
		res.rcpt[i].Recipient = m.Recipients[i]
		if r.AckRequest && res.rcpt[i].Outcome == Delivered {
			res.rcpt[i].Outcome = Awaiting
		}
	}
	return res.rcpt
}

// envelopeFrom is the MM4 reverse path: the email sender, or for a phone
// originator its number at our MMS domain.
func envelopeFrom(m *Message, localDomain string) string {
	if m.EnvelopeFrom != "" {
		return m.EnvelopeFrom
	}
	if strings.Contains(m.From, "@") {
		return m.From
	}
	if strings.HasSuffix(m.From, "/TYPE=PLMN") && localDomain != "" {
		return m.From + "@" + localDomain
	}
	return ""
}

// Forward builds the MM4_forward.REQ (or, with Plain set by the caller,
// the MM3 mail) for m.
func Forward(m *Message, ack bool, originatorSystem string) *mm4.Forward {
	p := m.MMS
	f := &mm4.Forward{
		TransactionID:    m.TransactionID,
		MessageID:        m.MessageID,
		From:             m.From,
		Subject:          p.Subject.String(),
		Date:             p.Date,
		DeliveryReport:   p.DeliveryReport == pdu.Yes,
		ReadReply:        p.ReadReport == pdu.Yes,
		AckRequest:       ack,
		OriginatorSystem: originatorSystem,
		ContentType:      p.ContentType,
		Parts:            p.Parts,
	}
	if f.Date.IsZero() {
		f.Date = time.Now()
	}
	if !m.Bcc {
		for _, n := range m.Recipients {
			f.To = append(f.To, n+"/TYPE=PLMN")
		}
	}
	switch p.MessageClass {
	case pdu.ClassPersonal, "":
		f.MessageClass = "Personal"
	case pdu.ClassAdvertisement:
		f.MessageClass = "Advertisement"
	case pdu.ClassInformational:
		f.MessageClass = "Informational"
	case pdu.ClassAuto:
		f.MessageClass = "Auto"
	}
	switch p.Priority {
	case pdu.PriorityLow:
		f.Priority = "Low"
	case pdu.PriorityHigh:
		f.Priority = "High"
	case pdu.PriorityNormal:
		f.Priority = "Normal"
	}
	if p.Expiry != nil {
		f.Expiry = p.Expiry.Time(f.Date)
	}
	if len(p.Parts) == 0 && len(p.Body) > 0 {
		f.ContentType = pdu.ContentType{Type: "application/vnd.wap.multipart.mixed"}
		f.Parts = []pdu.Part{{ContentType: p.ContentType, Body: p.Body}}
	}
	return f
}

// MM3 delivers to an MMSC's email gateway as an ordinary MIME mail to
// <number>@<GatewayDomain>.
type MM3 struct {
	Peer          *SMTPPeer
	GatewayDomain string
	// KeepPlus writes the number with its "+" (E.164); by default the
	// gateway gets the digits alone, as carriers' gateways expect.
	KeepPlus bool
}

// buildMM3 is the registry's builder of "mm3" routes.
func buildMM3(rc config.Route, env Env) (Route, error) {
	return &MM3{Peer: routePeer(rc, env), GatewayDomain: rc.GatewayDomain}, nil
}

// Carries returns mapping.InterfaceMM3.
func (r *MM3) Carries() mapping.Interface { return mapping.InterfaceMM3 }

// Deliver sends m in one SMTP transaction.
func (r *MM3) Deliver(ctx context.Context, m *Message) []Result {
	rcpts := make([]string, len(m.Recipients))
	for i, n := range m.Recipients {
		if !r.KeepPlus {
			n = strings.TrimPrefix(n, "+")
		}
		rcpts[i] = n + "@" + r.GatewayDomain
	}
	f := Forward(m, false, "")
	f.Plain = true
	f.To = nil
	if !m.Bcc {
		f.To = rcpts
	}
	f.Sender = ""
	var buf bytes.Buffer
	if err := mm4.WriteForward(&buf, f); err != nil {
		return all(m, Result{Outcome: Bounce, Reason: "cannot write the MM3 mail: " + err.Error()})
	}
	res := r.Peer.send(ctx, envelopeFrom(m, ""), rcpts, buf.Bytes())
	for i := range res.rcpt {
		res.rcpt[i].Recipient = m.Recipients[i]
	}
	return res.rcpt
}
