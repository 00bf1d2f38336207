// Package deliver hands converted MMS messages to the operator's side: an
// outbox folder, an MMSC over MM4 (SMTP between MMS relays, 3GPP TS 23.140)
// or an MMSC's email gateway over MM3. Every route implements Route and
// reports a result per recipient, so the queue can record, retry or bounce
// each number on its own. Build makes a route from its configuration
// through a registry of route types (registry.go).
package deliver

import (
	"context"
	"fmt"
	"time"

	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// Message is one MMS to deliver to one or more recipients.
type Message struct {
	QueueID string // the store's id of the email it came from
	// TransactionID and MessageID stay the same on every retry, so a peer
	// can tell a resent message from a new one.
	TransactionID string
	MessageID     string
	// From is the MMS originator: a mail address or "+1…/TYPE=PLMN".
	From string
	// EnvelopeFrom is the SMTP reverse path on MM4 and MM3 ("" = null).
	EnvelopeFrom string
	// Recipients are E.164 numbers ("+15551234567").
	Recipients []string
	// Bcc marks recipients that no copy may show (each goes alone).
	Bcc bool
	// MMS is the converted message: an M-Send.req with its parts.
	MMS *pdu.Message
	// PDU is MMS encoded, when the conversion made it already (it encodes
	// to size the message); nil otherwise. A route that writes the binary
	// PDU uses it as is and encodes MMS only when it is nil. Routes do not
	// modify it.
	PDU []byte
	// Envelope details for the outbox record.
	Sender   string    // the email sender
	Received time.Time // when the relay accepted the email
}

// Outcome is what a delivery did for one recipient.
type Outcome int

// Outcomes.
const (
	Delivered Outcome = iota // the peer took it
	Retry                    // a temporary failure: try again later
	Bounce                   // a permanent failure: give up and tell the sender
	TooLarge                 // the peer refused the size: adapt smaller and retry
	// Awaiting: the peer took it and is to answer (an MM4_forward.RES),
	// which confirms or refuses it later.
	Awaiting
)

var outcomeNames = [...]string{Delivered: "delivered", Retry: "temporary failure", Bounce: "permanent failure",
	TooLarge: "too large", Awaiting: "awaiting an answer"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is the outcome for one recipient. Reason is for people; the
// queue acts on Outcome and the codes.
type Result struct {
	Recipient string
	Outcome   Outcome
	// Reason says why in plain words (for logs and bounces).
	Reason string
	// Code is the peer's SMTP reply code, when there was one.
	Code int
	// Enhanced is the peer's enhanced status code ("5.1.1", RFC 3463),
	// when its reply had one.
	Enhanced string
	// Reply is the peer's reply as it gave it ("550 5.1.1 no such user"),
	// for a DSN's Diagnostic-Code; empty when there was no reply. From an
	// IMAP server (IMAPAppender) it is the IMAP answer ("NO [TRYCREATE]
	// no such mailbox") and Code is 0.
	Reply string
	// PeerID is what the peer called the message (its queue id), if said.
	PeerID string
	// Size is how many octets went to the peer.
	Size int
}

// Wire is what a route puts on the wire for a message, which is what the
// message is sized for: the conversion measures exactly what the route
// will send.
type Wire struct {
	// Interface is the form on the wire: the binary PDU, an MM4 message
	// or a plain MIME mail.
	Interface mapping.Interface
	// Forward, on InterfaceMM4 and InterfaceMM3, is how the route builds
	// the MIME message with mm4.NewForward: the same options size it and
	// send it.
	Forward mm4.ForwardOptions
}

// Route is a way to the operator: the outbox, an MMSC over MM4, MM3, and
// the interfaces to come. Every route type implements it in its own file
// and has one entry in the registry (registry.go).
type Route interface {
	// Wire says what the route puts on the wire for m. m has everything
	// but the converted MMS (MMS, PDU): it is asked before conversion.
	Wire(m *Message) Wire
	// Deliver delivers m and returns one result per recipient, in order.
	// It never returns fewer results than m has recipients.
	Deliver(ctx context.Context, m *Message) []Result
}

// all returns the same result for every recipient.
func all(m *Message, r Result) []Result {
	out := make([]Result, len(m.Recipients))
	for i, rcpt := range m.Recipients {
		out[i] = r
		out[i].Recipient = rcpt
	}
	return out
}
