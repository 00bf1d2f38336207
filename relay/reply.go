package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mmsrelay/mmsrelay/mail/dkim"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/relay/replies"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// ReplyOptions configure the way back (handset → email).
type ReplyOptions struct {
	Book     *replies.Book
	Domain   string // the reply domain of masked addresses
	Region   string // for sender numbers without a country code
	Carriers *mapping.CarrierRules
	// DKIM signs the emails the relay writes when set.
	DKIM *dkim.Options
}

// isReplyAddr reports whether domain is the reply domain of o.
func isReplyAddr(o *Options, domain string) bool {
	ro := o.Replies
	return ro != nil && ro.Book != nil && ro.Domain != "" && strings.EqualFold(domain, ro.Domain)
}

// rcptReply checks a reply address at RCPT: a token that was never given
// out (or expired) is refused when the policy says so.
func rcptReply(ctx context.Context, o *Options, addr string) error {
	_, err := o.Replies.Book.Resolve(ctx, addr, "")
	var re *replies.ReplyError
	if errors.As(err, &re) && errors.Is(err, replies.ErrUnmapped) && re.Action == replies.PolicyRefuse {
		st := re.Status()
		return smtpErr(st.Code, st.Enhanced[0], st.Enhanced[1], st.Enhanced[2], st.Text)
	}
	if err != nil && !errors.As(err, &re) {
		return fmt.Errorf("resolving a reply address: %w", err)
	}
	return nil
}

// checkOptOut returns an *smtp.SMTPError refusing a number that opted out
// of this sender, or the store's error.
func checkOptOut(ctx context.Context, ro *ReplyOptions, number, sender string) error {
	if ro == nil || ro.Book == nil {
		return nil
	}
	err := ro.Book.Check(ctx, number, sender)
	var oe *replies.OptedOutError
	if errors.As(err, &oe) {
		st := oe.Status()
		return smtpErr(st.Code, st.Enhanced[0], st.Enhanced[1], st.Enhanced[2], st.Text)
	}
	if err != nil {
		return fmt.Errorf("checking opt-outs: %w", err)
	}
	return nil
}

// replyIn turns a stored handset reply into an email to the
// conversation's sender, or acts on a STOP/START/HELP keyword.
type replyIn struct {
	queue   store.Queue
	kv      store.KV
	metrics *Metrics
	kick    func()
}

func (p *replyIn) process(ctx context.Context, j *job) {
	ro := j.o.Replies
	if ro == nil || ro.Book == nil {
		j.settleAll(ctx, verdict{outcome: retry, reason: "replies are not configured"})
		return
	}
	raw, err := j.body(ctx)
	if err != nil {
		j.settleAll(ctx, bodyVerdict(err))
		return
	}
	mms, err := parseReply(raw, ro.Carriers)
	if err != nil {
		j.settleAll(ctx, verdict{outcome: fail, reason: "the reply could not be read: " + err.Error()})
		return
	}
	number, _ := mapping.SenderNumber(mms.From, ro.Region)
	for _, idx := range j.Rcpts {
		j.settle(ctx, p.one(ctx, j, idx, raw, mms, number))
	}
}

// parseReply reads a handset reply, once: an MM4_forward.REQ (its .RES
// went out when it was taken) or a carrier's MM3 email.
func parseReply(raw []byte, carriers *mapping.CarrierRules) (*mapping.MMS, error) {
	var mms *mapping.MMS
	var err error
	if mm, perr := mm4.Parse(raw); perr == nil && mm.IsType(mm4.ForwardReq) {
		mms, err = mapping.MMSFromMM4(mm)
	} else {
		mms, err = mapping.MMSFromEmailRules(raw, carriers)
	}
	if err == nil && mms == nil {
		err = errors.New("no message in it")
	}
	return mms, err
}

// one handles the reply for recipient idx (a reply address).
func (p *replyIn) one(ctx context.Context, j *job, idx int, raw []byte, mms *mapping.MMS, number string) verdict {
	o := j.o
	ro := o.Replies
	m := j.Message
	addr := m.Rcpts[idx].Addr
	conv, err := ro.Book.Resolve(ctx, addr, number)
	var re *replies.ReplyError
	if errors.As(err, &re) {
		switch re.Action {
		case replies.PolicyCatchAll:
			return p.forwardRaw(ctx, o, idx, re.CatchAll, raw)
		case replies.PolicyQuarantine:
			if err := p.kv.PutKV(ctx, store.Table("quarantine"), m.ID, map[string]string{"addr": addr, "from": number, "reason": re.Reason}); err != nil {
				j.log.Error("quarantine", "err", err)
				return verdict{idx: idx, outcome: retry, reason: "quarantining the reply: " + err.Error()}
			}
			j.log.Warn("reply quarantined", "addr", addr, "from", number, "reason", re.Reason)
			return verdict{idx: idx, outcome: delivered, peerID: "quarantined"}
		}
		j.log.Warn("reply refused", "addr", addr, "from", number, "reason", re.Reason)
		return verdict{idx: idx, outcome: fail, reason: "reply refused: " + re.Reason}
	}
	if err != nil {
		return verdict{idx: idx, outcome: retry, reason: "reply lookup: " + err.Error()}
	}
	if k, ok := replies.ParseKeyword(replyText(mms)); ok {
		text, err := ro.Book.Apply(ctx, k, number, conv.Sender)
		if err != nil {
			return verdict{idx: idx, outcome: retry, reason: "opt-out: " + err.Error()}
		}
		j.log.Info("keyword from a handset", "keyword", k.String(), "number", number)
		if text != "" {
			if err := p.confirm(ctx, o, conv, number, text); err != nil {
				j.log.Error("queueing the confirmation MMS", "err", err)
			}
		}
		return verdict{idx: idx, outcome: delivered, peerID: "keyword " + k.String()}
	}
	email, err := mapping.ToEmail(mms, mapping.EmailOutOptions{ReplyDomain: ro.Domain, To: conv.Sender,
		Cc: conv.Cc(number), OrigSubject: conv.Subject, OrigMessageID: conv.MessageID, Region: ro.Region,
		Carriers: ro.Carriers, Now: o.Now()})
	if err != nil {
		return verdict{idx: idx, outcome: fail, reason: "the reply could not be made an email: " + err.Error()}
	}
	if ro.DKIM != nil {
		if signed, err := dkim.Sign(email, *ro.DKIM); err == nil {
			email = signed
		} else {
			j.log.Error("DKIM signing", "err", err)
		}
	}
	_, err = p.queue.Accept(ctx, store.Envelope{From: strings.TrimPrefix(number, "+") + "@" + ro.Domain,
		Recipients: []store.Recipient{{Addr: conv.Sender}}, ReceivedAt: o.Now().UTC(), Kind: store.KindEmail},
		bytes.NewReader(email))
	if err != nil {
		return verdict{idx: idx, outcome: retry, reason: "queueing the email: " + err.Error()}
	}
	p.metrics.Inc("mmsrelay_replies_total")
	j.log.Info("reply queued as email", "to", conv.Sender, "from", number)
	p.kick()
	return verdict{idx: idx, outcome: delivered}
}

// replyText is the handset's text, for keyword matching.
func replyText(m *mapping.MMS) string {
	var b strings.Builder
	for i := range m.Parts {
		if t, ok := m.Parts[i].Text(); ok && m.Parts[i].ContentType.Type == "text/plain" {
			b.WriteString(t)
		}
	}
	return strings.TrimSpace(b.String())
}

// confirm queues a short MMS to number from the conversation's reply
// address, as an email the MMS path converts.
func (p *replyIn) confirm(ctx context.Context, o *Options, conv replies.Conversation, number, text string) error {
	domains := o.Conversion.Recipients.Domains
	if len(domains) == 0 {
		return errors.New("no MMS domain to address the confirmation")
	}
	to := number + "@" + domains[0]
	raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", conv.From, to, o.Now().Format(time.RFC1123Z),
		mapping.NewID(), o.Hostname, text)
	_, err := p.queue.Accept(ctx, store.Envelope{From: "", Recipients: []store.Recipient{{Addr: to, Number: number, Domain: domains[0]}},
		ReceivedAt: o.Now().UTC(), Kind: store.KindMMS}, strings.NewReader(raw))
	if err != nil {
		return err
	}
	p.kick()
	return nil
}

// forwardRaw sends an unmapped reply as it came to the catch-all mailbox.
func (p *replyIn) forwardRaw(ctx context.Context, o *Options, idx int, to string, raw []byte) verdict {
	_, err := p.queue.Accept(ctx, store.Envelope{From: "", Recipients: []store.Recipient{{Addr: to}},
		ReceivedAt: o.Now().UTC(), Kind: store.KindEmail}, bytes.NewReader(raw))
	if err != nil {
		return verdict{idx: idx, outcome: retry, reason: "queueing for the catch-all: " + err.Error()}
	}
	p.kick()
	return verdict{idx: idx, outcome: delivered, peerID: "catch-all"}
}

// AcceptReply stores a reply that came from a polled mailbox, as a reply
// taken over SMTP would be: addressed to the reply address found among its
// Delivered-To, X-Original-To, To and Cc fields (an unknown address when
// there is none, which the unmapped policy then handles). A nil error
// means it is durably queued, and the mailbox may let it go.
func (r *Relay) AcceptReply(ctx context.Context, raw []byte) error {
	o := r.o()
	ro := o.Replies
	if ro == nil || ro.Book == nil {
		return errors.New("relay: replies are not configured")
	}
	addr := replyAddrIn(raw, ro.Domain)
	if addr == "" {
		addr = "unknown@" + ro.Domain
	}
	_, err := r.st.Queue.Accept(ctx, store.Envelope{From: "", Recipients: []store.Recipient{{Addr: addr}},
		ReceivedAt: o.Now().UTC(), Kind: store.KindReply}, bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("relay: queueing a reply: %w", err)
	}
	r.metrics.Inc("mmsrelay_accepted_total", "kind", string(store.KindReply))
	r.Kick()
	return nil
}

// replyAddrIn finds the first address at domain in the header block of raw.
func replyAddrIn(raw []byte, domain string) string {
	end := len(raw)
	if i := strings.Index(string(raw[:min(len(raw), 256<<10)]), "\r\n\r\n"); i >= 0 {
		end = i
	} else if i := strings.Index(string(raw[:min(len(raw), 256<<10)]), "\n\n"); i >= 0 {
		end = i
	}
	hdr := strings.ReplaceAll(string(raw[:end]), "\r\n", "\n")
	hdr = strings.ReplaceAll(hdr, "\n\t", " ")
	hdr = strings.ReplaceAll(hdr, "\n ", " ")
	lines := strings.Split(hdr, "\n")
	for _, field := range []string{"delivered-to:", "x-original-to:", "to:", "cc:"} {
		for _, l := range lines {
			if !strings.HasPrefix(strings.ToLower(l), field) {
				continue
			}
			for _, a := range strings.FieldsFunc(l[len(field):], func(c rune) bool {
				return c == ',' || c == ' ' || c == '<' || c == '>' || c == '"' || c == ';'
			}) {
				if _, d, ok := strings.Cut(a, "@"); ok && strings.EqualFold(d, domain) {
					return a
				}
			}
		}
	}
	return ""
}
