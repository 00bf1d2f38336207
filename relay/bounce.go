package relay

import (
	"context"
	"strings"

	"github.com/mmsrelay/mmsrelay/mail/dsn"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// bounce queues a failure DSN for one recipient of m to its sender: never
// to the null sender, never for the relay's own mail, and not when the
// recipient's NOTIFY says no.
func (r *Relay) bounce(ctx context.Context, m *store.Message, ref store.RcptRef, reason, status string) error {
	return r.notify(ctx, m, ref, "failed", reason, status, "")
}

// reportDelivery turns an MM4 delivery report into a DSN for the sender:
// a success when the phone retrieved it (if the sender asked), a failure
// when it was rejected, expired or unreachable.
func (r *Relay) reportDelivery(ctx context.Context, m *store.Message, ref store.RcptRef, rep *mm4.Message) error {
	switch strings.ToLower(rep.MMStatusCode) {
	case "retrieved", "forwarded":
		return r.notify(ctx, m, ref, "delivered", "the phone retrieved the message", "2.0.0", "success")
	case "rejected", "expired", "unreachable", "unrecognised", "unrecognized":
		return r.notify(ctx, m, ref, "failed", "the mobile network reported the message "+strings.ToLower(rep.MMStatusCode)+
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

func (r *Relay) notify(ctx context.Context, m *store.Message, ref store.RcptRef, action, reason, status, _ string) error {
	env := m.Envelope
	if env.Kind != store.KindMMS || dsn.NullSender(env.From) {
		return nil
	}
	var notify []string
	if ref.Index < len(env.Recipients) {
		notify = env.Recipients[ref.Index].Notify
	}
	if !dsn.ShouldNotify(notify, action) {
		return nil
	}
	rcpt := env.Recipients[ref.Index]
	var rs store.Rcpt
	if ref.Index < len(m.Rcpts) {
		rs = m.Rcpts[ref.Index]
	}
	raw, err := r.body(ctx, m.ID)
	if err != nil {
		raw = nil // a bounce without the original is better than none
	}
	msg, err := dsn.Build(dsn.Report{
		ReportingHost:      r.o().Hostname,
		OriginalSender:     env.From,
		OriginalEnvelopeID: env.EnvID,
		Arrival:            env.ReceivedAt,
		Ret:                env.Ret,
		Original:           raw,
		Recipients: []dsn.Recipient{{
			Addr: rcpt.Addr, ORCPT: rcpt.ORCPT, Action: action, Status: status,
			Reason: reason, DiagnosticCode: diagnostic(reason), RemoteMTA: rs.Attempt.Route,
			LastAttempt: rs.LastAttempt,
		}},
	})
	if err != nil {
		return err
	}
	_, err = r.st.Accept(ctx, store.Envelope{From: "", Recipients: []store.Recipient{{Addr: env.From}},
		ReceivedAt: r.o().Now().UTC(), Kind: store.KindEmail}, msg)
	if err == nil {
		r.metrics.Inc("mmsrelay_bounces_total", "action", action)
		r.Kick()
	}
	return err
}

// diagnostic extracts a peer's SMTP reply from a reason, if it quotes one.
func diagnostic(reason string) string {
	if i := strings.Index(reason, "answered "); i >= 0 {
		return reason[i+len("answered "):]
	}
	return ""
}
