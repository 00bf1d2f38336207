package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
	"github.com/mmsrelay/mmsrelay/relay/deliver"
	"github.com/mmsrelay/mmsrelay/relay/replies"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// Run runs the queue workers until ctx is done. Work in flight finishes or
// is left claimed, which the store turns back into due work when it next
// opens: a message is never lost, at worst sent again with the same ids.
func (r *Relay) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := 0; i < r.o().Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.watchResponses(ctx)
	}()
	r.Kick()
	wg.Wait()
	return nil
}

// awaitingRes marks a recipient delivered to an MM4 peer that was asked
// for an MM4_forward.RES which has not come yet.
const awaitingRes = "awaiting MM4_forward.RES"

// maxResRetries is how often a message is sent again for want of an
// MM4_forward.RES before the sender is told.
const maxResRetries = 3

// watchResponses sends again what an MM4 peer took but never confirmed
// within ResponseTimeout, with the same identifiers, and after
// maxResRetries tells the sender.
func (r *Relay) watchResponses(ctx context.Context) {
	tick := min(r.o().ResponseTimeout/4, time.Minute)
	t := time.NewTicker(max(tick, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msgs, err := r.st.List(ctx, store.ListOptions{Status: store.Delivered, Kind: store.KindMMS})
		if err != nil {
			continue
		}
		now := r.o().Now()
		for _, m := range msgs {
			for i, rc := range m.Rcpts {
				if rc.Status != store.Delivered || rc.Report != awaitingRes || now.Sub(rc.Updated) < r.o().ResponseTimeout {
					continue
				}
				ref := store.RcptRef{ID: m.ID, Index: i}
				if rc.Attempts > maxResRetries {
					r.st.RecordReport(ctx, ref, "no MM4_forward.RES")
					r.log.Warn("no MM4_forward.RES after retries", "queue_id", m.ID, "rcpt", rc.Addr)
					r.bounce(ctx, m, ref, fmt.Sprintf("the mobile network took the message but never confirmed it (no MM4_forward.RES after %d attempts)", rc.Attempts), "4.4.7")
					continue
				}
				r.log.Info("no MM4_forward.RES in time: sending again", "queue_id", m.ID, "rcpt", rc.Addr, "tid", rc.TransactionID)
				r.metrics.Inc("mmsrelay_res_timeouts_total")
				if err := r.st.Requeue(ctx, ref, now, "no MM4_forward.RES within "+r.o().ResponseTimeout.String()); err == nil {
					r.Kick()
				}
			}
		}
	}
}

func (r *Relay) worker(ctx context.Context) {
	for ctx.Err() == nil {
		jobs, err := r.st.Claim(ctx, r.o().Now(), 1)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("claiming work", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		if len(jobs) == 0 {
			r.idle(ctx)
			continue
		}
		for _, j := range jobs {
			r.safeProcess(ctx, j)
		}
	}
}

// idle waits for a kick or the next due time (at most a second, so a
// clock seam or another process's writes are noticed).
func (r *Relay) idle(ctx context.Context) {
	d := time.Second
	if t, ok, err := r.st.NextDue(ctx); err == nil && ok {
		if w := t.Sub(r.o().Now()); w < d {
			d = max(w, 5*time.Millisecond)
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-r.kick:
	case <-timer.C:
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// safeProcess runs process and turns a panic into deferred recipients.
func (r *Relay) safeProcess(ctx context.Context, j store.Job) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic processing a message", "queue_id", j.Message.ID, "panic", p, "stack", string(debug.Stack()))
			for _, ref := range j.Refs() {
				r.st.MarkDeferred(context.Background(), ref, r.o().Now().Add(r.o().RetryMax), "internal error")
			}
		}
	}()
	r.process(ctx, j)
}

func (r *Relay) process(ctx context.Context, j store.Job) {
	m := j.Message
	switch m.Envelope.Kind {
	case store.KindMMS:
		r.processMMS(ctx, j)
	case store.KindEmail, store.KindPostmaster:
		r.processEmail(ctx, j)
	case store.KindReply:
		if r.o().Replies == nil || r.o().Replies.Book == nil {
			for _, ref := range j.Refs() {
				r.defer_(ctx, m, ref, "replies are not configured")
			}
			return
		}
		r.processReply(ctx, j)
	default:
		for _, ref := range j.Refs() {
			r.fail(ctx, m, ref, "unknown message kind "+string(m.Envelope.Kind), "")
		}
	}
}

// group is the recipients that share one MMS.
type group struct {
	route *Route
	refs  []store.RcptRef
	rcpts []mapping.MMSRecipient
	tid   string
	mid   string
	bcc   bool
	// budget is the size limit for a retry after a "too large" answer.
	budget int
	// domain is the MMS domain the numbers were addressed at.
	domain string
}

func (r *Relay) processMMS(ctx context.Context, j store.Job) {
	m := j.Message
	log := r.log.With("queue_id", m.ID)
	raw, err := r.body(ctx, m.ID)
	if err != nil {
		log.Error("reading a stored body", "err", err)
		for _, ref := range j.Refs() {
			r.defer_(ctx, m, ref, "cannot read the stored message: "+err.Error())
		}
		return
	}
	email, err := mapping.ParseEmailBytes(raw, mapping.EmailOptions{KeepHistory: r.o().KeepHistory})
	if err != nil {
		for _, ref := range j.Refs() {
			r.fail(ctx, m, ref, "the email could not be read: "+err.Error(), "5.6.0")
		}
		return
	}
	visible := map[string]bool{}
	for _, list := range [][]string{email.To, email.Cc} {
		for _, a := range list {
			if rc, err := mapping.ParseRecipient(a, r.o().Recipients); err == nil {
				visible[rc.E164] = true
			}
		}
	}
	ccs := map[string]bool{}
	for _, a := range email.Cc {
		if rc, err := mapping.ParseRecipient(a, r.o().Recipients); err == nil {
			ccs[rc.E164] = true
		}
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, idx := range j.Rcpts {
		ref := store.RcptRef{ID: m.ID, Index: idx}
		rs := m.Rcpts[idx]
		rc, err := mapping.ParseRecipient(rs.Addr, r.o().Recipients)
		if err != nil {
			r.fail(ctx, m, ref, "not an MMS number: "+err.Error(), "5.1.3")
			continue
		}
		route, ok := r.routeFor(rc.E164)
		if !ok {
			r.fail(ctx, m, ref, "no route to "+rc.E164, "5.1.1")
			continue
		}
		if !r.fromReplyDomain(email) {
			if err := r.checkOptOut(ctx, rc.E164, m.Envelope.From); err != nil {
				var se *smtp.SMTPError
				if errors.As(err, &se) && se.Code >= 500 {
					r.fail(ctx, m, ref, se.Message, "5.7.1")
					continue
				}
			}
		}
		// One email arriving in several SMTP transactions goes once to
		// each number.
		if rs.Attempts == 1 && email.MessageID != "" {
			first, err := r.st.ClaimOnce(ctx, "dedup|"+strings.ToLower(m.Envelope.From)+"|"+email.MessageID+"|"+rc.E164, r.o().Lifetime+24*time.Hour)
			if err == nil && !first {
				log.Info("duplicate of a message already queued for this number", "rcpt", rc.E164)
				r.st.MarkDelivered(ctx, ref, "duplicate")
				r.metrics.Inc("mmsrelay_duplicates_total")
				continue
			}
		}
		bcc := !visible[rc.E164]
		kind := mapping.KindTo
		if ccs[rc.E164] {
			kind = mapping.KindCc
		}
		if bcc {
			kind = mapping.KindBcc
		}
		budget := 0
		if strings.HasPrefix(rs.LastError, tooLargePrefix) && rs.Attempt.Size > 0 {
			budget = int(rs.Attempt.Size) * 7 / 10
		}
		k := route.Name + "|" + rs.Attempt.TransactionID + "|" + fmt.Sprint(budget) + "|" + strings.ToLower(rc.Domain)
		if bcc || r.o().GroupMode == "individual" {
			k += "|" + rc.E164
		}
		g := byKey[k]
		if g == nil {
			g = &group{route: route, tid: rs.Attempt.TransactionID, mid: rs.Attempt.MessageID, bcc: bcc, budget: budget,
				domain: strings.ToLower(rc.Domain)}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.refs = append(g.refs, ref)
		g.rcpts = append(g.rcpts, mapping.MMSRecipient{E164: rc.E164, Kind: kind})
	}
	for _, g := range groups {
		r.deliverGroup(ctx, m, email, raw, g)
	}
}

const tooLargePrefix = "too large: "

// fromReplyDomain reports whether the email comes from one of our reply
// addresses (a STOP/START confirmation): it goes out as it is.
func (r *Relay) fromReplyDomain(e *mapping.Email) bool {
	ro := r.o().Replies
	if ro == nil || e.From == nil {
		return false
	}
	_, d, _ := strings.Cut(e.From.Address, "@")
	return ro.Domain != "" && strings.EqualFold(d, ro.Domain)
}

// maskedFrom records the conversation of a group and returns the MMS
// From: the reply address in masked mode, "" (the email's own From)
// otherwise.
func (r *Relay) maskedFrom(ctx context.Context, m *store.Message, e *mapping.Email, g *group) (string, error) {
	ro := r.o().Replies
	if ro == nil || ro.Book == nil || r.fromReplyDomain(e) {
		return "", nil
	}
	sender := m.Envelope.From
	if e.From != nil && e.From.Address != "" {
		sender = e.From.Address
	}
	if sender == "" {
		return "", nil
	}
	t := replies.Thread{Sender: sender, MessageID: e.MessageID, Subject: e.Subject, Time: e.Date, MMSDomain: g.domain}
	if t.MMSDomain == "" && len(r.o().Recipients.Domains) > 0 {
		t.MMSDomain = r.o().Recipients.Domains[0]
	}
	for _, rc := range g.rcpts {
		t.Numbers = append(t.Numbers, rc.E164)
	}
	conv, err := ro.Book.Record(ctx, t)
	if err != nil {
		return "", err
	}
	if strings.EqualFold(conv.From, sender) {
		return "", nil // direct mode: the email's own From, display name and all
	}
	return conv.From, nil
}

func (r *Relay) deliverGroup(ctx context.Context, m *store.Message, email *mapping.Email, raw []byte, g *group) {
	log := r.log.With("queue_id", m.ID, "route", g.route.Name)
	if g.tid == "" {
		g.tid = mapping.NewID()
	}
	if g.mid == "" {
		g.mid = g.tid + "@" + r.o().Hostname
	}
	iface := g.route.Deliverer.Carries()
	from, err := r.maskedFrom(ctx, m, email, g)
	if err != nil {
		for _, ref := range g.refs {
			r.defer_(ctx, m, ref, "recording the conversation: "+err.Error())
		}
		return
	}
	start := time.Now()
	conv, err := mapping.ToMMS(ctx, email, g.rcpts, mapping.ConvertOptions{
		From:    from,
		Profile: g.route.Profile, Budget: g.budget, Interface: iface, TransactionID: g.tid, MessageID: g.mid,
		SubjectMaxChars: r.o().SubjectMaxChars, Expiry: r.o().Expiry, DeliveryReport: r.o().DeliveryReport,
		MessageClass: r.o().MessageClass, Now: r.o().Now(),
	})
	r.metrics.Observe("mmsrelay_conversion_seconds", time.Since(start).Seconds())
	if err != nil {
		reason := "the email could not be converted to MMS: " + err.Error()
		if errors.Is(err, mapping.ErrNoContent) {
			reason = "the email has nothing that can be sent as MMS (no text and no usable pictures)"
		}
		for _, ref := range g.refs {
			r.fail(ctx, m, ref, reason, "5.6.0")
		}
		return
	}
	for _, d := range conv.Dropped {
		log.Info("part not sent", "name", d.Name, "reason", d.Reason.String())
	}
	for _, ref := range g.refs {
		if err := r.st.RecordAttempt(ctx, ref, store.Attempt{Route: g.route.Name, TransactionID: g.tid,
			MessageID: g.mid, Size: int64(conv.Size)}); err != nil {
			log.Error("recording an attempt", "err", err)
			for _, ref := range g.refs {
				r.defer_(ctx, m, ref, "local store problem")
			}
			return
		}
	}
	if d, ok := g.route.Deliverer.(*deliver.MM4); ok && d.AckRequest {
		// Before the attempt: the peer's .RES may come before Deliver returns.
		for _, ref := range g.refs {
			r.st.RecordReport(ctx, ref, awaitingRes)
		}
	}
	sender := m.Envelope.From
	msg := &deliver.Message{QueueID: m.ID, TransactionID: g.tid, MessageID: g.mid, From: pduFrom(conv.MMS),
		EnvelopeFrom: sender, Bcc: g.bcc, MMS: conv.MMS, Sender: sender, Received: m.Envelope.ReceivedAt}
	for _, rc := range g.rcpts {
		msg.Recipients = append(msg.Recipients, rc.E164)
	}
	start = time.Now()
	results := g.route.Deliverer.Deliver(ctx, msg)
	r.metrics.Observe("mmsrelay_delivery_seconds", time.Since(start).Seconds(), "route", g.route.Name)
	for i, ref := range g.refs {
		res := deliver.Result{Outcome: deliver.Retry, Reason: "no result from the route"}
		if i < len(results) {
			res = results[i]
		}
		switch res.Outcome {
		case deliver.Delivered, deliver.Awaiting:
			if err := r.st.MarkDelivered(ctx, ref, res.PeerID); err != nil {
				log.Error("recording a delivery", "err", err)
			}

			r.metrics.Inc("mmsrelay_delivered_total", "route", g.route.Name)
			log.Info("delivered", "rcpt", msg.Recipients[i], "peer_id", res.PeerID, "size", conv.Size)
		case deliver.TooLarge:
			r.metrics.Inc("mmsrelay_too_large_total", "route", g.route.Name)
			if conv.Size < 20*1024 {
				r.fail(ctx, m, ref, "the mobile network refused even a small version of the message: "+res.Reason, "5.3.4")
				continue
			}
			if err := r.st.MarkDeferred(ctx, ref, r.o().Now(), tooLargePrefix+res.Reason); err != nil {
				log.Error("deferring", "err", err)
			}
			r.Kick()
		case deliver.Bounce:
			r.metrics.Inc("mmsrelay_failed_total", "route", g.route.Name)
			r.fail(ctx, m, ref, "the mobile network refused the message: "+res.Reason, statusOf(res))
		default:
			r.defer_(ctx, m, ref, res.Reason)
		}
	}
}

func pduFrom(m *pdu.Message) string {
	if m.From == nil || m.From.Insert {
		return ""
	}
	return m.From.Address.String()
}

// statusOf is the DSN status of a permanent refusal: the peer's enhanced
// code when its reply had a 5.x.x one ("... the peer answered 550 5.1.1
// no such user"), else 5.0.0.
func statusOf(res deliver.Result) string {
	if _, rest, ok := strings.Cut(res.Reason, "answered "); ok {
		if f := strings.Fields(rest); len(f) >= 2 && strings.HasPrefix(f[1], "5.") && strings.Count(f[1], ".") == 2 &&
			strings.Trim(f[1], "0123456789.") == "" && !strings.Contains(f[1], "..") && !strings.HasSuffix(f[1], ".") {
			return f[1]
		}
	}
	return "5.0.0"
}

// defer_ schedules another attempt with exponential backoff and jitter, or
// fails the recipient once the message has outlived its lifetime.
func (r *Relay) defer_(ctx context.Context, m *store.Message, ref store.RcptRef, reason string) {
	now := r.o().Now()
	attempts := m.Rcpts[ref.Index].Attempts
	d := r.o().RetryMin << min(max(attempts-1, 0), 20)
	if d > r.o().RetryMax || d <= 0 {
		d = r.o().RetryMax
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	next := now.Add(d)
	if next.After(m.Created.Add(r.o().Lifetime)) {
		r.fail(ctx, m, ref, fmt.Sprintf("the message could not be delivered within %s; last problem: %s", r.o().Lifetime, reason), "4.4.7")
		return
	}
	r.metrics.Inc("mmsrelay_retries_total")
	if err := r.st.MarkDeferred(ctx, ref, next, reason); err != nil {
		r.log.Error("deferring", "queue_id", m.ID, "err", err)
	}
	r.log.Info("deferred", "queue_id", m.ID, "rcpt", m.Rcpts[ref.Index].Addr, "next", next, "reason", reason)
}

// fail records a permanent failure and bounces to the sender.
func (r *Relay) fail(ctx context.Context, m *store.Message, ref store.RcptRef, reason, status string) {
	if err := r.st.MarkFailed(ctx, ref, reason); err != nil {
		r.log.Error("recording a failure", "queue_id", m.ID, "err", err)
	}
	r.log.Warn("failed", "queue_id", m.ID, "rcpt", m.Rcpts[ref.Index].Addr, "reason", reason)
	if err := r.bounce(ctx, m, ref, reason, status); err != nil {
		r.log.Error("queueing a bounce", "queue_id", m.ID, "err", err)
	}
}

func (r *Relay) body(ctx context.Context, id string) ([]byte, error) {
	b, err := r.st.Body(ctx, id)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(io.LimitReader(b, r.o().MaxMessageBytes+1<<20))
}

// processEmail sends the relay's own email (bounces, reports) and mail for
// postmaster@ and abuse@.
func (r *Relay) processEmail(ctx context.Context, j store.Job) {
	m := j.Message
	if r.o().Mailer == nil {
		for _, ref := range j.Refs() {
			r.defer_(ctx, m, ref, "no way to send email is configured")
		}
		return
	}
	raw, err := r.body(ctx, m.ID)
	if err != nil {
		for _, ref := range j.Refs() {
			r.defer_(ctx, m, ref, "cannot read the stored message: "+err.Error())
		}
		return
	}
	var rcpts []string
	for _, idx := range j.Rcpts {
		a := m.Rcpts[idx].Addr
		if m.Envelope.Kind == store.KindPostmaster {
			a = r.o().Postmaster
		}
		rcpts = append(rcpts, a)
	}
	if m.Envelope.Kind == store.KindPostmaster && r.o().Postmaster == "" {
		for _, ref := range j.Refs() {
			r.st.MarkFailed(ctx, ref, "no postmaster mailbox configured")
		}
		r.log.Warn("mail for postmaster or abuse, but no postmaster mailbox is configured", "queue_id", m.ID)
		return
	}
	results := r.o().Mailer.Send(ctx, m.Envelope.From, rcpts, raw)
	for i, ref := range j.Refs() {
		res := deliver.Result{Outcome: deliver.Retry, Reason: "no result"}
		if i < len(results) {
			res = results[i]
		}
		switch res.Outcome {
		case deliver.Delivered:
			r.st.MarkDelivered(ctx, ref, res.PeerID)
			r.metrics.Inc("mmsrelay_delivered_total", "route", "email")
		case deliver.Bounce, deliver.TooLarge:
			// A bounce that cannot be delivered is not bounced again.
			r.st.MarkFailed(ctx, ref, res.Reason)
			r.metrics.Inc("mmsrelay_failed_total", "route", "email")
			if m.Envelope.From != "" {
				r.bounce(ctx, m, ref, res.Reason, "5.0.0")
			}
		default:
			r.defer_(ctx, m, ref, res.Reason)
		}
	}
}
