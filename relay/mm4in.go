package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// handleMM4 takes what a peer MMSC sends to our system address: answers to
// our MM4_forward.REQ, delivery reports and read reports. It updates the
// messages they refer to and answers with an MM4 .RES when asked. It runs
// inside DATA: a nil return is the 250.
func (r *Relay) handleMM4(ctx context.Context, peer string, raw []byte) error {
	m, err := mm4.Parse(raw)
	if err != nil {
		r.metrics.Inc("mmsrelay_smtp_rejected_total", "reason", "not_mm4")
		return smtpErr(554, 5, 6, 0, "Not an MM4 message: no X-Mms-Message-Type header")
	}
	log := r.log.With("peer", peer, "mm4_type", m.Type, "tid", m.TransactionID, "mid", m.MessageID)
	r.metrics.Inc("mmsrelay_mm4_received_total", "type", m.Type)
	if code := m.Header.Get("X-Internal-Status-Code"); code != "" {
		log.Info("aggregator status", "code", code, "text", m.StatusText)
	}
	switch {
	case m.IsType(mm4.ForwardRes):
		refs, err := r.st.Lookup(ctx, store.RefTransactionID, m.TransactionID)
		if err != nil {
			return r.storeErr(err)
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
		for _, ref := range refs {
			status := "forward.res: " + m.RequestStatusCode
			if m.StatusText != "" {
				status += " (" + m.StatusText + ")"
			}
			if err := r.st.RecordReport(ctx, ref, status); err != nil {
				return r.storeErr(err)
			}
			if !ok && temporary {
				// The aggregator will not take it now: send again later,
				// with the same ids.
				log.Info("peer answered with a temporary failure: sending again later", "queue_id", ref.ID, "status", status)
				if err := r.st.Requeue(ctx, ref, r.o().Now().Add(r.o().RetryMin), "the mobile network answered "+status); err != nil {
					log.Warn("requeue after a temporary .RES", "err", err)
				}
				r.metrics.Inc("mmsrelay_retries_total")
				continue
			}
			if !ok {
				msg, err := r.st.Get(ctx, ref.ID)
				if err != nil {
					return r.storeErr(err)
				}
				reason := fmt.Sprintf("the mobile network did not accept the message: %s %s", m.RequestStatusCode, m.StatusText)
				log.Warn("peer refused the message", "queue_id", ref.ID, "status", m.RequestStatusCode)
				if err := r.bounce(ctx, msg, ref, reason, "5.0.0"); err != nil {
					return r.storeErr(err)
				}
			}
		}
	case m.IsType(mm4.DeliveryReportReq), m.IsType(mm4.ReadReplyReportReq):
		refs, err := r.st.Lookup(ctx, store.RefMessageID, m.MessageID)
		if err != nil {
			return r.storeErr(err)
		}
		if len(refs) == 0 {
			log.Warn("report for an unknown message")
		}
		status := m.MMStatusCode
		if m.IsType(mm4.ReadReplyReportReq) {
			status = "read: " + m.ReadStatus
		}
		for _, ref := range refs {
			msg, err := r.st.Get(ctx, ref.ID)
			if err != nil {
				return r.storeErr(err)
			}
			// A group MMS has one message id for several numbers: the
			// report's From says whose it is.
			if !reportFor(msg.Rcpts[ref.Index].Addr, m.From) && len(refs) > 1 {
				continue
			}
			if err := r.st.RecordReport(ctx, ref, status); err != nil {
				return r.storeErr(err)
			}
			if m.IsType(mm4.DeliveryReportReq) {
				if err := r.reportDelivery(ctx, msg, ref, m); err != nil {
					return r.storeErr(err)
				}
			}
		}
		if m.AckRequest {
			typ := mm4.DeliveryReportRes
			if m.IsType(mm4.ReadReplyReportReq) {
				typ = mm4.ReadReplyReportRes
			}
			if err := r.answerMM4(ctx, m, typ, "Ok"); err != nil {
				return r.storeErr(err)
			}
		}
	case m.IsType(mm4.ForwardReq):
		// Messages from phones come to a reply address, not to the system
		// address.
		if m.AckRequest {
			if err := r.answerMM4(ctx, m, mm4.ForwardRes, "Error-service-denied"); err != nil {
				return r.storeErr(err)
			}
			return nil
		}
		return smtpErr(550, 5, 7, 1, "This address takes MM4 answers and reports, not messages")
	default:
		log.Info("MM4 message type not handled")
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

// answerMM4 queues an MM4 .RES to the peer's originator system.
func (r *Relay) answerMM4(ctx context.Context, req *mm4.Message, typ, code string) error {
	to := req.OriginatorSystem
	if to == "" {
		to = req.Sender
	}
	if to == "" {
		return nil
	}
	var buf bytes.Buffer
	if err := mm4.WriteResponse(&buf, &mm4.Response{Type: typ, TransactionID: req.TransactionID, MessageID: req.MessageID,
		StatusCode: code, From: r.o().OriginatorSystem, To: to, Date: r.o().Now()}); err != nil {
		return err
	}
	_, err := r.st.Accept(ctx, store.Envelope{From: r.o().OriginatorSystem, Recipients: []store.Recipient{{Addr: to}},
		ReceivedAt: r.o().Now().UTC(), Kind: store.KindEmail}, buf.Bytes())
	if err == nil {
		r.Kick()
	}
	return err
}

func (r *Relay) storeErr(err error) error {
	if errors.Is(err, store.ErrDiskFull) {
		return errDiskFull
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	r.log.Error("store", "err", err)
	return errStore
}
