package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// outcome is what a processor concluded for one recipient.
type outcome int

const (
	delivered outcome = iota // the peer took it (or there is nothing left to do)
	awaiting                 // the peer took it and is to answer by ResponseTimeout
	retry                    // a temporary failure
	fail                     // a permanent failure: the sender gets a DSN
	tooLarge                 // the peer refused the size: try again smaller
)

// verdict is the outcome for one claimed recipient, with what the policy
// and the DSN need.
type verdict struct {
	idx     int // the recipient's index in the message
	outcome outcome
	peerID  string // delivered, awaiting
	reason  string // for people: logs, the record, the DSN
	// status is the DSN status of a failure ("5.1.1"); "" is 5.0.0.
	status string
	// reply is the peer's reply, for the DSN's Diagnostic-Code.
	reply string
	// size is what the peer refused (tooLarge).
	size int64
	// wait, when positive, replaces the backoff of a retry (after a
	// panic: RetryMax, so a message that crashes the relay cannot make
	// it crash again at once).
	wait time.Duration
}

// smallest is the size under which a "too large" answer is final: the
// message cannot be made usefully smaller.
const smallest = 20 * 1024

// policy is the one place that decides what a verdict becomes: backoff
// with jitter, the message lifetime, the next size after a "too large",
// and a DSN for a failure.
type policy struct {
	queue   store.Queue
	notes   *notifier
	metrics *Metrics
	log     *slog.Logger
	kick    func()
}

// settle records vs, the verdicts on a group of j's recipients, in one
// commit, then sends the DSNs of those that failed. An update refused
// because its lease was lost is logged and dropped: another worker has
// the recipient now.
func (p *policy) settle(ctx context.Context, j *job, vs []verdict) {
	o := j.o
	now := o.Now()
	m := j.Message
	ups := make([]store.Update, 0, len(vs))
	var failed []verdict
	// One jitter for the group: recipients that went out together come
	// due together, so a group MMS is tried again as one.
	jitter := 0.8 + 0.4*rand.Float64()
	for _, v := range vs {
		u := store.Update{Ref: j.ref(v.idx), Lease: j.Lease(v.idx)}
		addr := m.Rcpts[v.idx].Addr
		switch v.outcome {
		case delivered:
			u.Op, u.PeerID = store.OpDelivered, v.peerID
		case awaiting:
			u.Op, u.PeerID, u.AnswerBy = store.OpDelivered, v.peerID, now.Add(o.Queue.ResponseTimeout)
		case tooLarge:
			if v.size < smallest {
				v.outcome, v.status = fail, "5.3.4"
				v.reason = "the mobile network refused even a small version of the message: " + v.reason
				break
			}
			u.Op, u.Next, u.Budget, u.Reason = store.OpDeferred, now, v.size*7/10, "too large: "+v.reason
			j.log.Info("too large: trying again smaller", "rcpt", addr, "size", v.size, "budget", u.Budget)
		case retry:
			wait := v.wait
			if wait <= 0 {
				wait = backoff(o.Queue, m.Rcpts[v.idx].Attempts, jitter)
			}
			next := now.Add(wait)
			if next.After(m.Created.Add(o.Queue.Lifetime)) {
				v.outcome, v.status = fail, "4.4.7"
				v.reason = fmt.Sprintf("the message could not be delivered within %s; last problem: %s", o.Queue.Lifetime, v.reason)
				break
			}
			u.Op, u.Next, u.Reason = store.OpDeferred, next, v.reason
			p.metrics.Inc("mmsrelay_retries_total")
			j.log.Info("deferred", "rcpt", addr, "next", next, "reason", v.reason)
		}
		if v.outcome == fail {
			u.Op, u.Reason = store.OpFailed, v.reason
			failed = append(failed, v)
			j.log.Warn("failed", "rcpt", addr, "reason", v.reason)
		}
		ups = append(ups, u)
	}
	lost, err := refused(p.queue.Record(ctx, ups...))
	if err != nil {
		// Nothing applied: the leases run out and the recipients are
		// tried again.
		j.log.Error("recording results", "err", err)
		return
	}
	for ref, err := range lost {
		if errors.Is(err, store.ErrLeaseLost) {
			j.log.Warn("result dropped: the claim was lost to another worker", "rcpt", m.Rcpts[ref.Index].Addr)
		} else {
			j.log.Error("result refused", "rcpt", m.Rcpts[ref.Index].Addr, "err", err)
		}
	}
	for _, v := range vs {
		if v.outcome == tooLarge && lost[j.ref(v.idx)] == nil {
			p.kick()
			break
		}
	}
	for _, v := range failed {
		if lost[j.ref(v.idx)] != nil {
			continue
		}
		raw, _ := j.body(ctx) // a DSN without the original is better than none
		status := v.status
		if status == "" {
			status = "5.0.0"
		}
		if err := p.notes.notify(ctx, o, m, v.idx, raw, dsnFailed, v.reason, status, v.reply); err != nil {
			j.log.Error("queueing a bounce", "err", err)
		}
	}
}

// backoff is the wait before the next attempt of a recipient tried
// attempts times: exponential from RetryMin to RetryMax, times jitter
// (0.8 to 1.2).
func backoff(q QueueOptions, attempts int, jitter float64) time.Duration {
	d := q.RetryMin << min(max(attempts-1, 0), 20)
	if d > q.RetryMax || d <= 0 {
		d = q.RetryMax
	}
	return time.Duration(float64(d) * jitter)
}

// permanentStatus is the DSN status of a permanent refusal: the peer's
// enhanced code when it is a 5.x.x one, else 5.0.0.
func permanentStatus(enhanced string) string {
	if strings.HasPrefix(enhanced, "5.") {
		return enhanced
	}
	return "5.0.0"
}
