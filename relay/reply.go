package relay

import (
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

// isReplyAddr reports whether addr is at the reply domain.
func (r *Relay) isReplyAddr(domain string) bool {
	ro := r.o().Replies
	return ro != nil && ro.Book != nil && ro.Domain != "" && strings.EqualFold(domain, ro.Domain)
}

// rcptReply checks a reply address at RCPT: a token that was never given
// out (or expired) is refused when the policy says so.
func (r *Relay) rcptReply(ctx context.Context, addr string) error {
	_, err := r.o().Replies.Book.Resolve(ctx, addr, "")
	var re *replies.ReplyError
	if errors.As(err, &re) && errors.Is(err, replies.ErrUnmapped) && re.Action == replies.PolicyRefuse {
		st := re.Status()
		return smtpErr(st.Code, st.Enhanced[0], st.Enhanced[1], st.Enhanced[2], st.Text)
	}
	if err != nil && !errors.As(err, &re) {
		return r.storeErr(err)
	}
	return nil
}

// checkOptOut refuses a number that opted out of this sender.
func (r *Relay) checkOptOut(ctx context.Context, number, sender string) error {
	ro := r.o().Replies
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
		return r.storeErr(err)
	}
	return nil
}

// processReply turns a stored handset reply into an email to the
// conversation's sender, or acts on a STOP/START/HELP keyword.
func (r *Relay) processReply(ctx context.Context, j store.Job) {
	m := j.Message
	log := r.log.With("queue_id", m.ID)
	ro := r.o().Replies
	raw, err := r.body(ctx, m.ID)
	if err != nil {
		for _, ref := range j.Refs() {
			r.defer_(ctx, m, ref, "cannot read the stored message: "+err.Error())
		}
		return
	}
	var mms *mapping.MMS
	if mm, perr := mm4.Parse(raw); perr == nil && mm.IsType(mm4.ForwardReq) {
		mms, err = mapping.MMSFromMM4(mm) // its .RES went out when it was taken
	} else {
		mms, err = mapping.MMSFromEmailRules(raw, ro.Carriers)
	}
	if err == nil && mms == nil {
		err = errors.New("no message in it")
	}
	if err != nil {
		for _, ref := range j.Refs() {
			r.st.MarkFailed(ctx, ref, fmt.Sprintf("the reply could not be read: %v", err))
		}
		return
	}
	number, _ := mapping.SenderNumber(mms.From, ro.Region)
	for _, idx := range j.Rcpts {
		ref := store.RcptRef{ID: m.ID, Index: idx}
		addr := m.Rcpts[idx].Addr
		conv, err := ro.Book.Resolve(ctx, addr, number)
		var re *replies.ReplyError
		if errors.As(err, &re) {
			switch re.Action {
			case replies.PolicyCatchAll:
				r.forwardRaw(ctx, ref, m, re.CatchAll, raw)
				continue
			case replies.PolicyQuarantine:
				if err := r.st.PutKV(ctx, store.Table("quarantine"), m.ID, map[string]string{"addr": addr, "from": number, "reason": re.Reason}); err != nil {
					log.Error("quarantine", "err", err)
				}
				r.st.MarkDelivered(ctx, ref, "quarantined")
				log.Warn("reply quarantined", "addr", addr, "from", number, "reason", re.Reason)
				continue
			}
			r.st.MarkFailed(ctx, ref, "reply refused: "+re.Reason)
			log.Warn("reply refused", "addr", addr, "from", number, "reason", re.Reason)
			continue
		}
		if err != nil {
			r.defer_(ctx, m, ref, "reply lookup: "+err.Error())
			continue
		}
		if k, ok := replies.ParseKeyword(replyText(mms)); ok {
			text, err := ro.Book.Apply(ctx, k, number, conv.Sender)
			if err != nil {
				r.defer_(ctx, m, ref, "opt-out: "+err.Error())
				continue
			}
			log.Info("keyword from a handset", "keyword", k.String(), "number", number)
			if text != "" {
				if err := r.confirm(ctx, conv, number, text); err != nil {
					log.Error("queueing the confirmation MMS", "err", err)
				}
			}
			r.st.MarkDelivered(ctx, ref, "keyword "+k.String())
			continue
		}
		email, err := mapping.ToEmail(mms, mapping.EmailOutOptions{ReplyDomain: ro.Domain, To: conv.Sender,
			Cc: conv.Cc(number), OrigSubject: conv.Subject, OrigMessageID: conv.MessageID, Region: ro.Region,
			Carriers: ro.Carriers, Now: r.o().Now()})
		if err != nil {
			r.st.MarkFailed(ctx, ref, "the reply could not be made an email: "+err.Error())
			continue
		}
		if ro.DKIM != nil {
			if signed, err := dkim.Sign(email, *ro.DKIM); err == nil {
				email = signed
			} else {
				log.Error("DKIM signing", "err", err)
			}
		}
		rcpts := []store.Recipient{{Addr: conv.Sender}}
		_, err = r.st.Accept(ctx, store.Envelope{From: strings.TrimPrefix(number, "+") + "@" + ro.Domain,
			Recipients: rcpts, ReceivedAt: r.o().Now().UTC(), Kind: store.KindEmail}, email)
		if err != nil {
			r.defer_(ctx, m, ref, "queueing the email: "+err.Error())
			continue
		}
		r.st.MarkDelivered(ctx, ref, "")
		r.metrics.Inc("mmsrelay_replies_total")
		log.Info("reply queued as email", "to", conv.Sender, "from", number)
		r.Kick()
	}
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
func (r *Relay) confirm(ctx context.Context, conv replies.Conversation, number, text string) error {
	domains := r.o().Recipients.Domains
	if len(domains) == 0 {
		return errors.New("no MMS domain to address the confirmation")
	}
	to := number + "@" + domains[0]
	raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", conv.From, to, r.o().Now().Format(time.RFC1123Z),
		mapping.NewID(), r.o().Hostname, text)
	_, err := r.st.Accept(ctx, store.Envelope{From: "", Recipients: []store.Recipient{{Addr: to}},
		ReceivedAt: r.o().Now().UTC(), Kind: store.KindMMS}, []byte(raw))
	if err == nil {
		r.Kick()
	}
	return err
}

// forwardRaw sends an unmapped reply as it came to the catch-all mailbox.
func (r *Relay) forwardRaw(ctx context.Context, ref store.RcptRef, m *store.Message, to string, raw []byte) {
	_, err := r.st.Accept(ctx, store.Envelope{From: "", Recipients: []store.Recipient{{Addr: to}},
		ReceivedAt: r.o().Now().UTC(), Kind: store.KindEmail}, raw)
	if err != nil {
		r.defer_(ctx, m, ref, "queueing for the catch-all: "+err.Error())
		return
	}
	r.st.MarkDelivered(ctx, ref, "catch-all")
	r.Kick()
}

// ackReply answers a reply that came as an MM4_forward.REQ asking for an
// MM4_forward.RES, once the reply is stored: once per reply, whatever
// happens to it later.
func (r *Relay) ackReply(ctx context.Context, raw []byte) {
	mm, err := mm4.Parse(raw)
	if err != nil || !mm.IsType(mm4.ForwardReq) || !mm.AckRequest {
		return
	}
	if err := r.answerMM4(ctx, mm, mm4.ForwardRes, "Ok"); err != nil {
		r.log.Error("answering the MM4_forward.REQ", "err", err)
	}
}

// AcceptReply stores a reply that came from a polled mailbox, as a reply
// taken over SMTP would be: addressed to the reply address found among its
// Delivered-To, X-Original-To, To and Cc fields (an unknown address when
// there is none, which the unmapped policy then handles). A nil error
// means it is durably queued, and the mailbox may let it go.
func (r *Relay) AcceptReply(ctx context.Context, raw []byte) error {
	ro := r.o().Replies
	if ro == nil || ro.Book == nil {
		return errors.New("relay: replies are not configured")
	}
	addr := replyAddrIn(raw, ro.Domain)
	if addr == "" {
		addr = "unknown@" + ro.Domain
	}
	_, err := r.st.Accept(ctx, store.Envelope{From: "", Recipients: []store.Recipient{{Addr: addr}},
		ReceivedAt: r.o().Now().UTC(), Kind: store.KindReply}, raw)
	if err != nil {
		return err
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
