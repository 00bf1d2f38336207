package deliver

import (
	"bytes"
	"context"
	"strings"

	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
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

// Wire is an MM4_forward.REQ, built with r.forward(m).
func (r *MM4) Wire(m *Message) Wire {
	return Wire{Interface: mapping.InterfaceMM4, Forward: r.forward(m)}
}

// forward is how r builds m's MM4_forward.REQ, for sizing and sending.
func (r *MM4) forward(m *Message) mm4.ForwardOptions {
	return mm4.ForwardOptions{TransactionID: m.TransactionID, MessageID: m.MessageID,
		From: m.From, Sender: envelopeFrom(m, r.LocalDomain), Recipients: m.Recipients, Bcc: m.Bcc,
		AckRequest: r.AckRequest, OriginatorSystem: r.OriginatorSystem}
}

// Deliver sends m in one SMTP transaction, one RCPT per number. A
// recipient the peer took is Delivered, or Awaiting when AckRequest asks
// the peer to answer with an MM4_forward.RES.
func (r *MM4) Deliver(ctx context.Context, m *Message) []Result {
	var buf bytes.Buffer
	opts := r.forward(m)
	from := opts.Sender
	if err := mm4.WriteForward(&buf, mm4.NewForward(m.MMS, opts)); err != nil {
		return all(m, Result{Outcome: Bounce, Reason: "cannot write the MM4 message: " + err.Error()})
	}
	rcpts := make([]string, len(m.Recipients))
	for i, n := range m.Recipients {
		rcpts[i] = n + "/TYPE=PLMN@" + r.Domain
	}
	res := r.Peer.send(ctx, from, rcpts, buf.Bytes())
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

// Wire is a plain MIME mail, built with r.forward(m).
func (r *MM3) Wire(m *Message) Wire {
	return Wire{Interface: mapping.InterfaceMM3, Forward: r.forward(m)}
}

// forward is how r builds m's mail, for sizing and sending.
func (r *MM3) forward(m *Message) mm4.ForwardOptions {
	opts := mm4.ForwardOptions{TransactionID: m.TransactionID, MessageID: m.MessageID, From: m.From,
		Recipients: m.Recipients, Form: mm4.FormGateway, GatewayDomain: r.GatewayDomain, Bcc: m.Bcc, Plain: true}
	if r.KeepPlus {
		opts.Form = mm4.FormGatewayE164
	}
	return opts
}

// Deliver sends m in one SMTP transaction.
func (r *MM3) Deliver(ctx context.Context, m *Message) []Result {
	opts := r.forward(m)
	rcpts := make([]string, len(m.Recipients))
	for i, n := range m.Recipients {
		rcpts[i] = opts.Address(n)
	}
	var buf bytes.Buffer
	if err := mm4.WriteForward(&buf, mm4.NewForward(m.MMS, opts)); err != nil {
		return all(m, Result{Outcome: Bounce, Reason: "cannot write the MM3 mail: " + err.Error()})
	}
	res := r.Peer.send(ctx, envelopeFrom(m, ""), rcpts, buf.Bytes())
	for i := range res.rcpt {
		res.rcpt[i].Recipient = m.Recipients[i]
	}
	return res.rcpt
}
