package relay

import (
	"bytes"
	"context"
	"strings"

	"github.com/mmsrelay/mmsrelay/mail/dsn"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// DSN actions (RFC 3464).
const (
	dsnFailed    = "failed"
	dsnDelivered = "delivered"
)

// notifier queues DSNs to the senders of MMS messages.
type notifier struct {
	queue   store.Queue
	metrics *Metrics
	kick    func()
}

// reportDelivery turns an MM4 delivery report into a DSN for the sender:
// a success when the phone retrieved it (if the sender asked), a failure
// when it was rejected, expired or unreachable.
func (n *notifier) reportDelivery(ctx context.Context, o *Options, m *store.Message, idx int, rep *mm4.Message) error {
	switch strings.ToLower(rep.MMStatusCode) {
	case "retrieved", "forwarded":
		return n.notify(ctx, o, m, idx, nil, dsnDelivered, "the phone retrieved the message", "2.0.0", "")
	case "rejected", "expired", "unreachable", "unrecognised", "unrecognized":
		return n.notify(ctx, o, m, idx, nil, dsnFailed, "the mobile network reported the message "+strings.ToLower(rep.MMStatusCode)+
			statusText(rep.StatusText), "5.0.0", "")
	}
	return nil
}

func statusText(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// notify queues a DSN with action for recipient idx of m to its sender:
// never to the null sender, never for the relay's own mail, and not when
// the recipient's NOTIFY says no. raw is the original message when the
// caller has it (nil: it is read from the store); diag is the peer's reply
// for the Diagnostic-Code.
func (n *notifier) notify(ctx context.Context, o *Options, m *store.Message, idx int, raw []byte, action, reason, status, diag string) error {
	env := m.Envelope
	if env.Kind != store.KindMMS || dsn.NullSender(env.From) || idx >= len(env.Recipients) {
		return nil
	}
	rcpt := env.Recipients[idx]
	if !dsn.ShouldNotify(rcpt.Notify, action) {
		return nil
	}
	var rs store.Rcpt
	if idx < len(m.Rcpts) {
		rs = m.Rcpts[idx]
	}
	if raw == nil {
		// A DSN without the original is better than none.
		raw, _ = store.ReadBody(ctx, n.queue, m.ID, o.SMTP.MaxMessageBytes+1<<20)
	}
	msg, err := dsn.Build(dsn.Report{
		ReportingHost:      o.Hostname,
		OriginalSender:     env.From,
		OriginalEnvelopeID: env.EnvID,
		Arrival:            env.ReceivedAt,
		Ret:                env.Ret,
		Original:           raw,
		Recipients: []dsn.Recipient{{
			Addr: rcpt.Addr, ORCPT: rcpt.ORCPT, Action: action, Status: status,
			Reason: reason, DiagnosticCode: diag, RemoteMTA: rs.Attempt.Route,
			LastAttempt: rs.LastAttempt,
		}},
	})
	if err != nil {
		return err
	}
	_, err = n.queue.Accept(ctx, store.Envelope{From: "", Recipients: []store.Recipient{{Addr: env.From}},
		ReceivedAt: o.Now().UTC(), Kind: store.KindEmail}, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	n.metrics.Inc("mmsrelay_bounces_total", "action", action)
	n.kick()
	return nil
}
