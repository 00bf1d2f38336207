package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// answers takes what a peer MMSC sends to our system address: answers to
// our MM4_forward.REQ, delivery reports and read reports. It runs inside
// DATA, on a body small enough to hold: a nil return is the 250.
type answers struct {
	queue   store.Queue
	notes   *notifier
	metrics *Metrics
	log     *slog.Logger
	kick    func()
}

// handle updates the messages raw refers to and answers with an MM4 .RES
// when asked. The errors it returns are *smtp.SMTPError values.
func (a *answers) handle(ctx context.Context, o *Options, peer string, raw []byte) error {
	m, err := mm4.Parse(raw)
	if err != nil {
		a.metrics.Inc("mmsrelay_smtp_rejected_total", "reason", "not_mm4")
		return smtpErr(554, 5, 6, 0, "Not an MM4 message: no X-Mms-Message-Type header")
	}
	log := a.log.With("peer", peer, "mm4_type", m.Type, "tid", m.TransactionID, "mid", m.MessageID)
	a.metrics.Inc("mmsrelay_mm4_received_total", "type", m.Type)
	if code := m.Header.Get("X-Internal-Status-Code"); code != "" {
		log.Info("aggregator status", "code", code, "text", m.StatusText)
	}
	switch {
	case m.IsType(mm4.ForwardRes):
		return a.forwardRes(ctx, o, log, m)
	case m.IsType(mm4.DeliveryReportReq), m.IsType(mm4.ReadReplyReportReq):
		return a.report(ctx, o, log, m)
	case m.IsType(mm4.ForwardReq):
		// Messages from phones come to a reply address, not to the system
		// address.
		if m.AckRequest {
			if err := a.respond(ctx, o, m, mm4.ForwardRes, "Error-service-denied"); err != nil {
				return storeErr(log, err)
			}
			return nil
		}
		return smtpErr(550, 5, 7, 1, "This address takes MM4 answers and reports, not messages")
	default:
		log.Info("MM4 message type not handled")
	}
	return nil
}

// forwardRes records the answer to our MM4_forward.REQ: a confirmation,
// a temporary failure (sent again later, same ids) or a refusal (the
// sender is told).
func (a *answers) forwardRes(ctx context.Context, o *Options, log *slog.Logger, m *mm4.Message) error {
	refs, err := a.queue.Lookup(ctx, store.RefTransactionID, m.TransactionID)
	if err != nil {
		return storeErr(log, err)
	}
	if len(refs) == 0 {
		log.Warn("MM4_forward.RES for an unknown transaction")
		return nil
	}
	agg, aggKnown := aggregatorStatus(m.Header.Get("X-Internal-Status-Code"))
	ok := strings.EqualFold(m.RequestStatusCode, "Ok") && (!aggKnown || agg != aggPermanent && agg != aggTemporary) ||
		m.RequestStatusCode == "" && (!aggKnown || agg == aggOK)
	temporary := aggKnown && agg == aggTemporary ||
		!aggKnown && strings.Contains(strings.ToLower(m.RequestStatusCode), "network-problem")
	status := "forward.res: " + m.RequestStatusCode
	if m.StatusText != "" {
		status += " (" + m.StatusText + ")"
	}
	next := o.Now().Add(o.Queue.RetryMin) // one time for the group: it goes again as one
	for _, ref := range refs {
		if err := a.queue.Record(ctx, store.Update{Ref: ref, Op: store.OpAnswered, Report: status}); err != nil {
			if _, serr := refused(err); serr != nil {
				return storeErr(log, serr)
			}
			log.Warn("recording the answer", "queue_id", ref.ID, "err", err)
		}
		if !ok && temporary {
			// The aggregator will not take it now: send again later,
			// with the same ids.
			log.Info("peer answered with a temporary failure: sending again later", "queue_id", ref.ID, "status", status)
			if err := a.requeue(ctx, log, ref, next, "the mobile network answered "+status); err != nil {
				return storeErr(log, err)
			}
			continue
		}
		if !ok {
			msg, err := a.queue.Get(ctx, ref.ID)
			if err != nil {
				return storeErr(log, err)
			}
			reason := fmt.Sprintf("the mobile network did not accept the message: %s %s", m.RequestStatusCode, m.StatusText)
			log.Warn("peer refused the message", "queue_id", ref.ID, "status", m.RequestStatusCode)
			if err := a.notes.notify(ctx, o, msg, ref.Index, nil, dsnFailed, reason, "5.0.0", ""); err != nil {
				return storeErr(log, err)
			}
		}
	}
	return nil
}

// requeue makes a delivered recipient due again at next. An answer that
// comes while the worker that sent the message has not yet recorded the
// delivery is kept by the store for that attempt, whose recorded delivery
// then becomes the deferral.
func (a *answers) requeue(ctx context.Context, log *slog.Logger, ref store.RcptRef, next time.Time, reason string) error {
	lost, err := refused(a.queue.Record(ctx, store.Update{Ref: ref, Op: store.OpRequeue, Next: next, Reason: reason}))
	if err != nil {
		return err
	}
	if e := lost[ref]; e != nil {
		log.Warn("requeue after a temporary .RES", "queue_id", ref.ID, "err", e)
		return nil
	}
	a.metrics.Inc("mmsrelay_retries_total")
	a.kick()
	return nil
}

// report records a delivery or read report on the recipients it is for,
// tells the sender of a delivery report and answers when asked.
func (a *answers) report(ctx context.Context, o *Options, log *slog.Logger, m *mm4.Message) error {
	refs, err := a.queue.Lookup(ctx, store.RefMessageID, m.MessageID)
	if err != nil {
		return storeErr(log, err)
	}
	if len(refs) == 0 {
		log.Warn("report for an unknown message")
	}
	status := m.MMStatusCode
	if m.IsType(mm4.ReadReplyReportReq) {
		status = "read: " + m.ReadStatus
	}
	for _, ref := range refs {
		msg, err := a.queue.Get(ctx, ref.ID)
		if err != nil {
			return storeErr(log, err)
		}
		// A group MMS has one message id for several numbers: the
		// report's From says whose it is.
		if !reportFor(msg.Rcpts[ref.Index].Addr, m.From) && len(refs) > 1 {
			continue
		}
		if err := a.queue.Record(ctx, store.Update{Ref: ref, Op: store.OpReport, Report: status}); err != nil {
			return storeErr(log, err)
		}
		if m.IsType(mm4.DeliveryReportReq) {
			if err := a.notes.reportDelivery(ctx, o, msg, ref.Index, m); err != nil {
				return storeErr(log, err)
			}
		}
	}
	if m.AckRequest {
		typ := mm4.DeliveryReportRes
		if m.IsType(mm4.ReadReplyReportReq) {
			typ = mm4.ReadReplyReportRes
		}
		if err := a.respond(ctx, o, m, typ, "Ok"); err != nil {
			return storeErr(log, err)
		}
	}
	return nil
}

// Aggregator status classes.
const (
	aggOK = iota
	aggTemporary
	aggPermanent
)

// aggregatorStatus classifies an aggregator's X-Internal-Status-Code
// (Bandwidth's MM4 error codes: 1 service-not-allowed, 2 buffered, 1xx and
// 211/220 "temporary-…", 201 retries exceeded). known is false for an
// empty or unknown code.
func aggregatorStatus(code string) (class int, known bool) {
	code = strings.TrimSpace(code)
	if code == "" {
		return aggOK, false
	}
	switch code {
	case "0", "2": // 2: buffered, the aggregator took it
		return aggOK, true
	case "1", "201":
		return aggPermanent, true
	case "211", "220":
		return aggTemporary, true
	}
	if len(code) == 3 && code[0] == '1' {
		return aggTemporary, true
	}
	return aggPermanent, false
}

// reportFor reports whether a delivery report's From (the number whose
// status it is, "+15551234567/TYPE=PLMN") names rcpt
// ("+15551234567@mms.example.net").
func reportFor(rcpt, from string) bool {
	num := func(s string) string {
		s, _, _ = strings.Cut(s, "@")
		s, _, _ = strings.Cut(s, "/")
		return strings.TrimPrefix(s, "+")
	}
	return num(rcpt) != "" && num(rcpt) == num(from)
}

// respond queues an MM4 .RES to the peer's originator system.
func (a *answers) respond(ctx context.Context, o *Options, req *mm4.Message, typ, code string) error {
	to := req.OriginatorSystem
	if to == "" {
		to = req.Sender
	}
	if to == "" {
		return nil
	}
	var buf bytes.Buffer
	if err := mm4.WriteResponse(&buf, &mm4.Response{Type: typ, TransactionID: req.TransactionID, MessageID: req.MessageID,
		StatusCode: code, From: o.OriginatorSystem, To: to, Date: o.Now()}); err != nil {
		return err
	}
	_, err := a.queue.Accept(ctx, store.Envelope{From: o.OriginatorSystem, Recipients: []store.Recipient{{Addr: to}},
		ReceivedAt: o.Now().UTC(), Kind: store.KindEmail}, &buf)
	if err != nil {
		return err
	}
	a.kick()
	return nil
}

// ackReply answers a reply that came as an MM4_forward.REQ asking for an
// MM4_forward.RES, once the reply is stored: once per reply, whatever
// happens to it later. header is the reply's header block.
func (a *answers) ackReply(ctx context.Context, o *Options, header []byte) {
	mm, err := mm4.Parse(header)
	if err != nil || !mm.IsType(mm4.ForwardReq) || !mm.AckRequest {
		return
	}
	if err := a.respond(ctx, o, mm, mm4.ForwardRes, "Ok"); err != nil {
		a.log.Error("answering the MM4_forward.REQ", "err", err)
	}
}

// storeErr is the SMTP reply for a store error: 452 4.3.1 when the disk
// is full, else a generic 451 4.3.0 (the error is logged).
func storeErr(log *slog.Logger, err error) error {
	if errors.Is(err, store.ErrDiskFull) {
		return errDiskFull
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	log.Error("store", "err", err)
	return errStore
}

// maxResRetries is how often a message is sent again for want of an
// MM4_forward.RES before the sender is told.
const maxResRetries = 3

// watcher sends again what an MM4 peer took but never confirmed within
// ResponseTimeout, with the same identifiers, and after maxResRetries
// tells the sender. It reads the store's index of awaited answers.
type watcher struct {
	queue   store.Queue
	opts    func() *Options
	notes   *notifier
	metrics *Metrics
	log     *slog.Logger
	kick    func()
}

func (w *watcher) run(ctx context.Context) {
	tick := min(w.opts().Queue.ResponseTimeout/4, time.Minute)
	t := time.NewTicker(max(tick, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.check(ctx, w.opts()); err != nil && ctx.Err() == nil {
			w.log.Error("checking for unanswered MM4 messages", "err", err)
		}
	}
}

// check handles every recipient whose answer is overdue.
func (w *watcher) check(ctx context.Context, o *Options) error {
	now := o.Now()
	refs, err := w.queue.Awaiting(ctx, now, 1000)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		m, err := w.queue.Get(ctx, ref.ID)
		if err != nil {
			return err
		}
		rc := m.Rcpts[ref.Index]
		log := w.log.With("queue_id", m.ID, "rcpt", rc.Addr)
		if rc.Attempts > maxResRetries {
			applied, err := w.record(ctx, log, store.Update{Ref: ref, Op: store.OpAnswered, IfAwaiting: true,
				Report: "no MM4_forward.RES"})
			if err != nil {
				return err
			}
			if !applied {
				continue // answered meanwhile
			}
			log.Warn("no MM4_forward.RES after retries")
			reason := fmt.Sprintf("the mobile network took the message but never confirmed it (no MM4_forward.RES after %d attempts)", rc.Attempts)
			if err := w.notes.notify(ctx, o, m, ref.Index, nil, dsnFailed, reason, "4.4.7", ""); err != nil {
				log.Error("queueing a bounce", "err", err)
			}
			continue
		}
		applied, err := w.record(ctx, log, store.Update{Ref: ref, Op: store.OpRequeue, IfAwaiting: true, Next: now,
			Reason: "no MM4_forward.RES within " + o.Queue.ResponseTimeout.String()})
		if err != nil {
			return err
		}
		if !applied {
			continue // answered meanwhile
		}
		log.Info("no MM4_forward.RES in time: sending again", "tid", rc.TransactionID)
		w.metrics.Inc("mmsrelay_res_timeouts_total")
		w.kick()
	}
	return nil
}

// record applies u only while the recipient still awaits its answer
// (u.IfAwaiting): a refusal means the answer came meanwhile, or the
// recipient moved on, and is logged; a storage failure is returned.
func (w *watcher) record(ctx context.Context, log *slog.Logger, u store.Update) (applied bool, err error) {
	refusedBy, err := refused(w.queue.Record(ctx, u))
	if err != nil {
		return false, err
	}
	if e := refusedBy[u.Ref]; e != nil {
		log.Info("answer watch: no longer awaiting an answer", "op", u.Op.String(), "err", e)
		return false, nil
	}
	return true, nil
}
