package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
	"github.com/mmsrelay/mmsrelay/relay/deliver"
	"github.com/mmsrelay/mmsrelay/relay/replies"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// mmsOut turns an email into MMS messages, one per group of recipients
// that share a route and a copy, and delivers them:
//
//	read → group (number, route, opt-out, dedup, To/Cc/Bcc) → per group:
//	mask the sender → convert → record the attempt → deliver → classify
//
// Each step is a function of its own; the verdicts go to the policy.
type mmsOut struct {
	kv      store.KV
	metrics *Metrics
}

// group is the recipients that share one MMS.
type group struct {
	route *Route
	idxs  []int
	rcpts []mapping.MMSRecipient
	tid   string
	mid   string
	bcc   bool
	// budget is the size the next attempt must fit after a "too large"
	// answer; 0: the profile's.
	budget int64
	// domain is the MMS domain the numbers were addressed at.
	domain string
}

func (p *mmsOut) process(ctx context.Context, j *job) {
	raw, err := j.body(ctx)
	if err != nil {
		j.log.Error("reading a stored body", "err", err)
		j.settleAll(ctx, bodyVerdict(err))
		return
	}
	email, err := mapping.ParseEmailBytes(raw, mapping.EmailOptions{KeepHistory: j.o.Conversion.KeepHistory})
	if err != nil {
		j.settleAll(ctx, verdict{outcome: fail, reason: "the email could not be read: " + err.Error(), status: "5.6.0"})
		return
	}
	groups, early := p.group(ctx, j, email)
	j.settle(ctx, early...)
	for _, g := range groups {
		j.settle(ctx, p.send(ctx, j, email, g)...)
	}
}

// addressing is how the email's own header addresses each number: in To,
// in Cc, or not at all (a Bcc). Each list is parsed once.
type addressing struct{ to, cc map[string]bool }

func addressingOf(e *mapping.Email, ro mapping.RecipientOptions) addressing {
	a := addressing{to: map[string]bool{}, cc: map[string]bool{}}
	for _, l := range []struct {
		list []string
		set  map[string]bool
	}{{e.To, a.to}, {e.Cc, a.cc}} {
		for _, addr := range l.list {
			if rc, err := mapping.ParseRecipient(addr, ro); err == nil {
				l.set[rc.E164] = true
			}
		}
	}
	return a
}

// kind is how number goes in the MMS, and whether it must go alone.
func (a addressing) kind(number string) (mapping.RecipientKind, bool) {
	switch {
	case a.cc[number]:
		return mapping.KindCc, false
	case a.to[number]:
		return mapping.KindTo, false
	}
	return mapping.KindBcc, true
}

// number returns the recipient's number and MMS domain as parsed at RCPT,
// parsing the address only for a message stored by an older version.
func number(rc store.Recipient, ro mapping.RecipientOptions) (num, domain string, err error) {
	if rc.Number != "" {
		return rc.Number, strings.ToLower(rc.Domain), nil
	}
	r, err := mapping.ParseRecipient(rc.Addr, ro)
	if err != nil {
		return "", "", err
	}
	return r.E164, strings.ToLower(r.Domain), nil
}

// group sorts the claimed recipients into the MMS messages they get, and
// returns the verdicts of those that get none.
func (p *mmsOut) group(ctx context.Context, j *job, email *mapping.Email) ([]*group, []verdict) {
	o := j.o
	m := j.Message
	addr := addressingOf(email, o.Conversion.Recipients)
	fromUs := fromReplyDomain(o, email)
	var groups []*group
	var early []verdict
	byKey := map[string]*group{}
	for _, idx := range j.Rcpts {
		rs := m.Rcpts[idx]
		num, domain, err := number(m.Envelope.Recipients[idx], o.Conversion.Recipients)
		if err != nil {
			early = append(early, verdict{idx: idx, outcome: fail, reason: "not an MMS number: " + err.Error(), status: "5.1.3"})
			continue
		}
		route, ok := routeFor(o, num)
		if !ok {
			early = append(early, verdict{idx: idx, outcome: fail, reason: "no route to " + num, status: "5.1.1"})
			continue
		}
		if !fromUs {
			if v, stop := p.optedOut(ctx, o, idx, num, m.Envelope.From); stop {
				early = append(early, v)
				continue
			}
		}
		if v, stop := p.duplicate(ctx, j, idx, num, email.MessageID); stop {
			early = append(early, v)
			continue
		}
		kind, alone := addr.kind(num)
		k := fmt.Sprintf("%s|%s|%d|%s", route.Name, rs.Attempt.TransactionID, rs.Budget, domain)
		if alone || o.Conversion.GroupMode == "individual" {
			k += "|" + num
		}
		g := byKey[k]
		if g == nil {
			g = &group{route: route, tid: rs.Attempt.TransactionID, mid: rs.Attempt.MessageID, bcc: alone,
				budget: rs.Budget, domain: domain}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.idxs = append(g.idxs, idx)
		g.rcpts = append(g.rcpts, mapping.MMSRecipient{E164: num, Kind: kind})
	}
	return groups, early
}

// optedOut checks the opt-outs: a number that opted out of the sender
// fails; a store problem is a retry.
func (p *mmsOut) optedOut(ctx context.Context, o *Options, idx int, num, sender string) (verdict, bool) {
	err := checkOptOut(ctx, o.Replies, num, sender)
	if err == nil {
		return verdict{}, false
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 {
		return verdict{idx: idx, outcome: fail, reason: se.Message, status: "5.7.1"}, true
	}
	return verdict{idx: idx, outcome: retry, reason: "checking the opt-outs: " + err.Error()}, true
}

// duplicate makes one email arriving in several SMTP transactions go once
// to each number: only the first attempt of the first copy goes on.
func (p *mmsOut) duplicate(ctx context.Context, j *job, idx int, num, messageID string) (verdict, bool) {
	if j.Message.Rcpts[idx].Attempts != 1 || messageID == "" {
		return verdict{}, false
	}
	key := "dedup|" + strings.ToLower(j.Message.Envelope.From) + "|" + messageID + "|" + num
	first, err := p.kv.ClaimOnce(ctx, key, j.o.Queue.Lifetime+24*time.Hour)
	if err != nil {
		return verdict{idx: idx, outcome: retry, reason: "checking for duplicates: " + err.Error()}, true
	}
	if first {
		return verdict{}, false
	}
	j.log.Info("duplicate of a message already queued for this number", "rcpt", num)
	p.metrics.Inc("mmsrelay_duplicates_total")
	return verdict{idx: idx, outcome: delivered, peerID: "duplicate"}, true
}

// fromReplyDomain reports whether the email comes from one of our reply
// addresses (a STOP/START confirmation): it goes out as it is.
func fromReplyDomain(o *Options, e *mapping.Email) bool {
	ro := o.Replies
	if ro == nil || e.From == nil {
		return false
	}
	_, d, _ := strings.Cut(e.From.Address, "@")
	return ro.Domain != "" && strings.EqualFold(d, ro.Domain)
}

// maskedFrom records the conversation of a group and returns the MMS
// From: the reply address in masked mode, "" (the email's own From)
// otherwise.
func maskedFrom(ctx context.Context, o *Options, m *store.Message, e *mapping.Email, g *group) (string, error) {
	ro := o.Replies
	if ro == nil || ro.Book == nil || fromReplyDomain(o, e) {
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
	if t.MMSDomain == "" && len(o.Conversion.Recipients.Domains) > 0 {
		t.MMSDomain = o.Conversion.Recipients.Domains[0]
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

// all gives every recipient of g the same verdict.
func (g *group) all(v verdict) []verdict {
	vs := make([]verdict, len(g.idxs))
	for i, idx := range g.idxs {
		vs[i] = v
		vs[i].idx = idx
	}
	return vs
}

// convert makes the group's MMS, sized for what its route puts on the
// wire (the route's Wire: the same options build it for sizing and for
// sending).
func (p *mmsOut) convert(ctx context.Context, o *Options, email *mapping.Email, g *group, from string, w deliver.Wire) (*mapping.Conversion, error) {
	start := time.Now()
	conv, err := mapping.ToMMS(ctx, email, g.rcpts, mapping.ConvertOptions{
		From:    from,
		Profile: g.route.Profile, Budget: int(g.budget), Interface: w.Interface, Forward: w.Forward,
		TransactionID: g.tid, MessageID: g.mid,
		SubjectMaxChars: o.Conversion.SubjectMaxChars, Expiry: o.Conversion.Expiry,
		DeliveryReport: o.Conversion.DeliveryReport, MessageClass: o.Conversion.MessageClass, Now: o.Now(),
	})
	p.metrics.Observe("mmsrelay_conversion_seconds", time.Since(start).Seconds())
	return conv, err
}

// send converts, records the attempt and delivers the group's MMS, and
// returns a verdict per recipient.
func (p *mmsOut) send(ctx context.Context, j *job, email *mapping.Email, g *group) []verdict {
	o := j.o
	m := j.Message
	log := j.log.With("route", g.route.Name)
	if g.tid == "" {
		g.tid = mapping.NewID()
	}
	if g.mid == "" {
		g.mid = g.tid + "@" + o.Hostname
	}
	from, err := maskedFrom(ctx, o, m, email, g)
	if err != nil {
		return g.all(verdict{outcome: retry, reason: "recording the conversation: " + err.Error()})
	}
	sender := m.Envelope.From
	msg := &deliver.Message{QueueID: m.ID, TransactionID: g.tid, MessageID: g.mid, EnvelopeFrom: sender,
		Bcc: g.bcc, Sender: sender, Received: m.Envelope.ReceivedAt}
	for _, rc := range g.rcpts {
		msg.Recipients = append(msg.Recipients, rc.E164)
	}
	conv, err := p.convert(ctx, o, email, g, from, g.route.Via.Wire(msg))
	if err != nil {
		reason := "the email could not be converted to MMS: " + err.Error()
		if errors.Is(err, mapping.ErrNoContent) {
			reason = "the email has nothing that can be sent as MMS (no text and no usable pictures)"
		}
		return g.all(verdict{outcome: fail, reason: reason, status: "5.6.0"})
	}
	for _, d := range conv.Dropped {
		log.Info("part not sent", "name", d.Name, "reason", d.Reason.String())
	}
	if err := j.attempt(ctx, store.Attempt{Route: g.route.Name, TransactionID: g.tid, MessageID: g.mid,
		Size: int64(conv.Size)}, g.idxs); err != nil {
		lost, serr := refused(err)
		log.Error("recording an attempt: not delivering", "err", err)
		if serr != nil {
			return g.all(verdict{outcome: retry, reason: "local store problem"})
		}
		// Those whose claim was lost are another worker's now.
		var vs []verdict
		for _, idx := range g.idxs {
			if lost[j.ref(idx)] == nil {
				vs = append(vs, verdict{idx: idx, outcome: retry, reason: "local store problem"})
			}
		}
		return vs
	}
	msg.MMS, msg.PDU, msg.From = conv.MMS, conv.PDU, pduFrom(conv.MMS)
	start := time.Now()
	results := g.route.Via.Deliver(ctx, msg)
	p.metrics.Observe("mmsrelay_delivery_seconds", time.Since(start).Seconds(), "route", g.route.Name)
	vs := make([]verdict, len(g.idxs))
	for i, idx := range g.idxs {
		res := deliver.Result{Outcome: deliver.Retry, Reason: "no result from the route"}
		if i < len(results) {
			res = results[i]
		}
		vs[i] = p.classify(log, g.route.Name, msg.Recipients[i], res, conv.Size)
		vs[i].idx = idx
	}
	return vs
}

// classify turns a route's result into a verdict, from its typed fields.
func (p *mmsOut) classify(log *slog.Logger, route, rcpt string, res deliver.Result, size int) verdict {
	switch res.Outcome {
	case deliver.Delivered, deliver.Awaiting:
		p.metrics.Inc("mmsrelay_delivered_total", "route", route)
		log.Info("delivered", "rcpt", rcpt, "peer_id", res.PeerID, "size", size, "awaiting_answer", res.Outcome == deliver.Awaiting)
		if res.Outcome == deliver.Awaiting {
			return verdict{outcome: awaiting, peerID: res.PeerID}
		}
		return verdict{outcome: delivered, peerID: res.PeerID}
	case deliver.TooLarge:
		p.metrics.Inc("mmsrelay_too_large_total", "route", route)
		return verdict{outcome: tooLarge, reason: res.Reason, reply: res.Reply, size: int64(size)}
	case deliver.Bounce:
		p.metrics.Inc("mmsrelay_failed_total", "route", route)
		return verdict{outcome: fail, reason: "the mobile network refused the message: " + res.Reason,
			status: permanentStatus(res.Enhanced), reply: res.Reply}
	}
	return verdict{outcome: retry, reason: res.Reason, reply: res.Reply}
}

func pduFrom(m *pdu.Message) string {
	if m.From == nil || m.From.Insert {
		return ""
	}
	return m.From.Address.String()
}
