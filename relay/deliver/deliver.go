// Package deliver hands converted MMS messages to the operator's side: an
// outbox folder, an MMSC over MM4 (SMTP between MMS relays, 3GPP TS 23.140)
// or an MMSC's email gateway over MM3. Every route implements Deliverer and
// reports a result per recipient, so the queue can record, retry or bounce
// each number on its own.
package deliver

import (
	"context"
	"fmt"
	"time"

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
	// Envelope details for the outbox record.
	Sender   string    // the email sender
	Received time.Time // when the relay accepted the email
}

// Status is the outcome of a delivery to one recipient.
type Status int

// Outcomes.
const (
	Delivered Status = iota // the peer took it
	Temporary               // try again later
	Permanent               // give up: bounce
	TooLarge                // the peer refused the size: adapt smaller and retry
)

func (s Status) String() string {
	switch s {
	case Delivered:
		return "delivered"
	case Temporary:
		return "temporary failure"
	case Permanent:
		return "permanent failure"
	case TooLarge:
		return "too large"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result is the outcome for one recipient.
type Result struct {
	Recipient string
	Status    Status
	// Reason says why in plain words (for logs and bounces).
	Reason string
	// Code is the peer's SMTP reply code, when there was one.
	Code int
	// PeerID is what the peer called the message (its queue id), if said.
	PeerID string
	// Size is how many octets went to the peer.
	Size int
}

// Deliverer is a route's way to the operator.
type Deliverer interface {
	// Deliver delivers m and returns one result per recipient, in order.
	// It never returns fewer results than m has recipients.
	Deliver(ctx context.Context, m *Message) []Result
	// Interface names the route type: "outbox", "mm4", "mm3".
	Interface() string
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
