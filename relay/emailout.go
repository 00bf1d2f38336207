package relay

import (
	"context"

	"github.com/mmsrelay/mmsrelay/relay/deliver"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// emailOut sends the relay's own email (replies, bounces, MM4 answers)
// with the Mailer, and mail for postmaster@ and abuse@ to the postmaster
// mailbox.
type emailOut struct {
	metrics *Metrics
}

func (p *emailOut) process(ctx context.Context, j *job) {
	o := j.o
	m := j.Message
	if o.Mailer == nil {
		j.settleAll(ctx, verdict{outcome: retry, reason: "no way to send email is configured"})
		return
	}
	postmaster := m.Envelope.Kind == store.KindPostmaster
	if postmaster && o.Postmaster == "" {
		j.log.Warn("mail for postmaster or abuse, but no postmaster mailbox is configured")
		j.settleAll(ctx, verdict{outcome: fail, reason: "no postmaster mailbox configured"})
		return
	}
	raw, err := j.body(ctx)
	if err != nil {
		j.settleAll(ctx, bodyVerdict(err))
		return
	}
	rcpts := make([]string, len(j.Rcpts))
	for i, idx := range j.Rcpts {
		rcpts[i] = m.Rcpts[idx].Addr
		if postmaster {
			rcpts[i] = o.Postmaster
		}
	}
	results := o.Mailer.Send(ctx, m.Envelope.From, rcpts, raw)
	vs := make([]verdict, len(j.Rcpts))
	for i, idx := range j.Rcpts {
		res := deliver.Result{Outcome: deliver.Retry, Reason: "no result"}
		if i < len(results) {
			res = results[i]
		}
		vs[i] = verdict{idx: idx, reason: res.Reason, reply: res.Reply}
		switch res.Outcome {
		case deliver.Delivered, deliver.Awaiting:
			vs[i].outcome, vs[i].peerID = delivered, res.PeerID
			p.metrics.Inc("mmsrelay_delivered_total", "route", "email")
		case deliver.Bounce, deliver.TooLarge:
			// The relay's own mail is not bounced (the policy sends
			// DSNs only for MMS messages).
			vs[i].outcome, vs[i].status = fail, permanentStatus(res.Enhanced)
			p.metrics.Inc("mmsrelay_failed_total", "route", "email")
		default:
			vs[i].outcome = retry
		}
	}
	j.settle(ctx, vs...)
}
