// Package dsn builds and reads delivery status notifications: the bounce,
// delay and success reports that the relay mails back to an email sender
// about the MMS it made from their message.
//
// A notification is a multipart/report (RFC 6522) with three parts: a
// text/plain explanation in plain words, a message/delivery-status with
// machine-readable fields (RFC 3464), and the original message or its
// header. ShouldNotify applies the sender's NOTIFY wish (RFC 3461) and
// NullSender the rule that nothing is ever sent to the null reverse path.
//
// The package is pure: bytes in, bytes or values out. It does no I/O.
package dsn

import (
	"errors"
	"strings"
	"time"
)

// Actions of a recipient (RFC 3464 §2.3.3).
const (
	ActionFailed    = "failed"    // the message could not be delivered
	ActionDelayed   = "delayed"   // not delivered yet; still trying
	ActionDelivered = "delivered" // delivered to the recipient
	ActionRelayed   = "relayed"   // handed on to a system that will not report back
	ActionExpanded  = "expanded"  // delivered and forwarded to further addresses
)

// DefaultMaxOriginal is how much of the original message a report returns
// whole; a larger original is returned as its header only.
const DefaultMaxOriginal = 256 << 10

// Errors returned by Build and Parse.
var (
	// ErrNullSender: the original sender is the null reverse path "<>",
	// to which no notification may ever be sent (RFC 5321 §4.5.5,
	// RFC 3464 §2).
	ErrNullSender = errors.New("dsn: no notification to the null sender")
	// ErrNotDSN: the message carries no message/delivery-status part.
	ErrNotDSN = errors.New("dsn: not a delivery status notification")
)

// Report is one notification: about one original message, for one or more
// of its recipients.
type Report struct {
	// ReportingHost is our host name: Reporting-MTA, the From domain
	// (MAILER-DAEMON@ReportingHost) and the Message-ID domain. Required.
	ReportingHost string
	// OriginalSender is the reverse path of the original message, where the
	// report goes (To). It may not be the null sender.
	OriginalSender string
	// OriginalEnvelopeID is the ENVID the sender gave at MAIL FROM
	// (RFC 3461 §4.4), xtext-decoded; "" when none.
	OriginalEnvelopeID string
	// Arrival is when the relay accepted the original message (Arrival-Date).
	Arrival time.Time
	// Ret is the sender's RET wish: "FULL", "HDRS" or "" (RFC 3461 §4.3).
	// A report with a failed recipient returns the whole original unless
	// Ret is "HDRS"; other reports return its header only.
	Ret string
	// Original is the original message as received. Build does not keep
	// it; Parse returns a copy of the returned part (the whole message
	// or its header).
	Original []byte
	// MaxOriginal bounds the returned original (0: DefaultMaxOriginal).
	// A larger one is returned as its header, itself cut to this bound.
	MaxOriginal int
	// Recipients are the recipients reported on, at least one.
	Recipients []Recipient

	// Date and MessageID of the report itself. Build uses them when set
	// (MessageID with its angle brackets) and makes them otherwise; Parse
	// fills them in.
	Date      time.Time
	MessageID string
}

// Recipient is the fate of the original message at one recipient.
type Recipient struct {
	// Addr is the final recipient: an email address ("rfc822" type), or
	// "type;address" for another address type. Required.
	Addr string
	// ORCPT is the original recipient the sender gave at RCPT TO
	// (RFC 3461 §4.2), xtext-decoded, with or without its "rfc822;" type;
	// "" when none.
	ORCPT string
	// Action is one of the Action constants. Required.
	Action string
	// Status is the enhanced status code "x.y.z" (RFC 3463); "" takes
	// 5.0.0 for failed, 4.0.0 for delayed and 2.0.0 otherwise.
	Status string
	// DiagnosticCode is the remote reply, e.g. "550 5.1.1 no such number",
	// written as "smtp; …" (or "type; …" when it starts with a type).
	DiagnosticCode string
	// RemoteMTA is the host that gave DiagnosticCode ("" when none).
	RemoteMTA string
	// Reason says why in plain words for the sender, e.g. "The mobile
	// network refused the message: 550 5.1.1 no such number". "" makes one
	// from Action and DiagnosticCode.
	Reason string
	// LastAttempt is when delivery was last tried (zero: not said).
	LastAttempt time.Time
	// WillRetryUntil is, for a delayed recipient, when the relay gives up.
	WillRetryUntil time.Time
}

// ShouldNotify reports whether a report with the given action is wanted by
// a sender whose RCPT TO carried NOTIFY=notify (RFC 3461 §4.1). The values
// are matched without regard to case and may also come as one
// comma-separated string. Without a NOTIFY parameter (notify empty), failures
// and delays are reported and successes are not; NEVER suppresses every
// report. "relayed" and "expanded" count as success (RFC 3461 §6.2).
func ShouldNotify(notify []string, action string) bool {
	var want string
	switch strings.ToLower(action) {
	case ActionFailed:
		want = "FAILURE"
	case ActionDelayed:
		want = "DELAY"
	case ActionDelivered, ActionRelayed, ActionExpanded:
		want = "SUCCESS"
	default:
		return false
	}
	given := false
	hit := false
	for _, n := range notify {
		for _, v := range strings.Split(n, ",") {
			v = strings.ToUpper(strings.TrimSpace(v))
			if v == "" {
				continue
			}
			given = true
			if v == "NEVER" {
				return false
			}
			if v == want {
				hit = true
			}
		}
	}
	if !given {
		return want != "SUCCESS"
	}
	return hit
}

// NullSender reports whether from is the null reverse path ("" or "<>"),
// to which no report may be sent.
func NullSender(from string) bool {
	from = strings.TrimSpace(from)
	return from == "" || from == "<>"
}
