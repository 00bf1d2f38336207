package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrNotFound means no message, recipient or key by that name.
	ErrNotFound = errors.New("not found")
	// ErrDiskFull means the file system is out of space (ENOSPC, EDQUOT)
	// or below the configured reserve; the SMTP layer answers 452 4.3.1.
	ErrDiskFull = errors.New("disk full")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrInvalid means an argument or a state transition is not allowed,
	// for example recording an outcome for a recipient that is not claimed.
	ErrInvalid = errors.New("invalid")
)

// Envelope is the SMTP envelope and session facts of an accepted message.
type Envelope struct {
	// From is the MAIL FROM address; empty is the null sender <>.
	From       string      `json:"from"`
	Recipients []Recipient `json:"rcpts"`
	// Ret is the DSN RET parameter ("FULL", "HDRS" or empty).
	Ret string `json:"ret,omitempty"`
	// EnvID is the DSN ENVID parameter, xtext-decoded.
	EnvID      string    `json:"envid,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	RemoteIP   string    `json:"remote_ip,omitempty"`
	HELO       string    `json:"helo,omitempty"`
	AuthUser   string    `json:"auth_user,omitempty"`
	// Kind says which way the message goes and which processor takes it.
	Kind Kind `json:"kind"`
	// Route optionally pins the route by name; empty lets the relay choose.
	Route string `json:"route,omitempty"`
}

// Recipient is one RCPT TO with its DSN parameters.
type Recipient struct {
	Addr string `json:"addr"`
	// Number is the E.164 number (or short code) of an MMS recipient, as
	// parsed once at RCPT; Domain is the MMS domain it was addressed at.
	// Both are empty for other recipients.
	Number string `json:"number,omitempty"`
	Domain string `json:"domain,omitempty"`
	// Notify is the DSN NOTIFY list (NEVER, SUCCESS, FAILURE, DELAY).
	Notify []string `json:"notify,omitempty"`
	// ORCPT is the DSN ORCPT parameter as given ("rfc822;addr").
	ORCPT string `json:"orcpt,omitempty"`
}

// Message is a stored message: its envelope, body facts and the delivery
// state of each recipient (Rcpts[i] belongs to Envelope.Recipients[i]).
type Message struct {
	ID       string    `json:"id"`
	Envelope Envelope  `json:"env"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"` // hex SHA-256 of the body
	Created  time.Time `json:"created"`
	// Rcpts is filled by the store when reading; it is not part of the
	// stored message record.
	Rcpts []Rcpt `json:"rcpts,omitempty"`
}

// Done reports whether every recipient is in a final state.
func (m *Message) Done() bool {
	for i := range m.Rcpts {
		if !m.Rcpts[i].Status.Final() {
			return false
		}
	}
	return true
}

// Rcpt is the delivery state of one recipient of a message.
type Rcpt struct {
	Index  int    `json:"i"`
	Addr   string `json:"addr"`
	Status Status `json:"status"`
	// Attempts counts claims, so it includes an attempt in progress.
	Attempts int `json:"attempts"`
	// NextAttempt is when a waiting recipient is due, or when the lease of
	// a Delivering one ends.
	NextAttempt time.Time `json:"next,omitzero"`
	// Owner holds the claim of a Delivering recipient.
	Owner       string    `json:"owner,omitempty"`
	LastAttempt time.Time `json:"last,omitzero"`
	LastError   string    `json:"error,omitempty"`
	Updated     time.Time `json:"updated"`
	Attempt               // identifiers the last attempt used
	PeerID      string    `json:"peer_id,omitempty"` // message id given by the peer
	Report      string    `json:"report,omitempty"`  // last delivery report status
	// AnswerBy is set on a Delivered recipient whose peer is to answer
	// (an MM4_forward.RES) by then; zero once answered or when no answer
	// is awaited.
	AnswerBy time.Time `json:"answer_by,omitzero"`
	// AnsweredAttempt is the attempt during which the last answer was
	// recorded (OpAnswered): an answer that came during an attempt, before
	// its OpDelivered, means nothing is awaited any more. Counting attempts
	// rather than comparing times keeps the rule free of clocks.
	AnsweredAttempt int `json:"answered_attempt,omitempty"`
	// RequeueAt, set while Delivering, is when the attempt under way is
	// to be made again, with RequeueReason: the peer answered with a
	// temporary failure before the worker recorded the delivery
	// (OpRequeue), and that OpDelivered makes the recipient Deferred.
	RequeueAt     time.Time `json:"requeue_at,omitzero"`
	RequeueReason string    `json:"requeue_reason,omitempty"`
	// Budget, when positive, is the size the next attempt must fit: the
	// peer refused a larger one.
	Budget int64 `json:"budget,omitempty"`
}

// Attempt is what a delivery attempt uses on the wire, recorded before it is
// made and re-used by retries.
type Attempt struct {
	Route         string `json:"route,omitempty"`
	TransactionID string `json:"tid,omitempty"`
	MessageID     string `json:"mid,omitempty"`
	Size          int64  `json:"sent_size,omitempty"` // size of the converted message
}

// RcptRef names one recipient of one message.
type RcptRef struct {
	ID    string `json:"id"`
	Index int    `json:"i"`
}

func (r RcptRef) String() string { return fmt.Sprintf("%s/%d", r.ID, r.Index) }

// Job is a claimed unit of work: a message and the indexes of the recipients
// claimed in it. Message.Rcpts shows the state after the claim.
type Job struct {
	Message *Message
	Rcpts   []int
}

// Lease returns the claim on recipient index idx of the job's message.
func (j Job) Lease(idx int) Lease {
	r := j.Message.Rcpts[idx]
	return Lease{Owner: r.Owner, Attempt: r.Attempts}
}

// Refs returns the RcptRefs of the claimed recipients.
func (j Job) Refs() []RcptRef {
	refs := make([]RcptRef, len(j.Rcpts))
	for i, n := range j.Rcpts {
		refs[i] = RcptRef{ID: j.Message.ID, Index: n}
	}
	return refs
}

// Body is a stored message body. Reads do not share an offset with ReadAt.
type Body interface {
	io.ReadCloser
	io.ReaderAt
	Size() int64
}

// Status is the delivery state of a recipient.
type Status uint8

// Recipient states. Queued and Deferred wait for their next attempt,
// Delivering is claimed, the others are final, except that a Delivered
// recipient whose peer never confirmed it (OpRequeue) is Deferred again;
// it then gets a second delivery record when it ends.
const (
	Queued Status = iota + 1
	Delivering
	Delivered
	Deferred
	Failed
	Dropped
)

var statusNames = [...]string{
	Queued:     "queued",
	Delivering: "delivering",
	Delivered:  "delivered",
	Deferred:   "deferred",
	Failed:     "failed",
	Dropped:    "dropped",
}

func (s Status) String() string {
	if int(s) < len(statusNames) && statusNames[s] != "" {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Final reports whether s is Delivered, Failed or Dropped.
func (s Status) Final() bool { return s == Delivered || s == Failed || s == Dropped }

// Waiting reports whether s is Queued or Deferred, that is, claimable when due.
func (s Status) Waiting() bool { return s == Queued || s == Deferred }

// ParseStatus returns the Status named name.
func ParseStatus(name string) (Status, error) {
	for i, n := range statusNames {
		if n != "" && n == name {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown status %q", ErrInvalid, name)
}

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) {
	if _, err := ParseStatus(s.String()); err != nil {
		return nil, err
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Status) UnmarshalText(b []byte) error {
	v, err := ParseStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// RefKind is the kind of identifier Lookup searches.
type RefKind uint8

// Identifier kinds for Lookup.
const (
	RefTransactionID RefKind = iota + 1 // X-Mms-Transaction-ID used on the wire
	RefMessageID                        // X-Mms-Message-ID / Message-ID used on the wire
	RefPeerID                           // message id the peer returned
)

func (k RefKind) String() string {
	switch k {
	case RefTransactionID:
		return "transaction-id"
	case RefMessageID:
		return "message-id"
	case RefPeerID:
		return "peer-id"
	}
	return fmt.Sprintf("RefKind(%d)", uint8(k))
}

func (k RefKind) prefix() string {
	switch k {
	case RefTransactionID:
		return "t:"
	case RefMessageID:
		return "m:"
	case RefPeerID:
		return "p:"
	}
	return ""
}

// ListOptions filters List.
type ListOptions struct {
	// Status, if set, keeps messages with at least one recipient in it.
	Status Status
	// Kind, if set, keeps messages of that Envelope.Kind.
	Kind Kind
	// After, if set, starts after that queue id (for paging).
	After string
	// Limit caps the result; 0 means 1000.
	Limit int
}

// Table names a key/value table.
type Table string

// Tables used by the relay. Any other non-empty name works too.
const (
	Conversations Table = "conversations"
	Tokens        Table = "tokens"
	OptOuts       Table = "optouts"
	IMAPState     Table = "imapstate"
)

// Entry is one key/value pair of a Table; Value is the stored JSON.
type Entry struct {
	Key   string
	Value json.RawMessage
}

// PurgeOptions says what Purge removes. A zero duration keeps that kind of
// data forever.
type PurgeOptions struct {
	// Messages is how long finished messages (and their bodies) are kept,
	// counted from the last recipient update.
	Messages time.Duration
	// Records is how long delivery records are kept.
	Records time.Duration
}

// PurgeStats counts what Purge removed.
type PurgeStats struct {
	Messages int
	Keys     int // expired ClaimOnce keys
	Records  int
}

// Record is one line of records.jsonl: a final outcome for one recipient,
// for billing and audit. Consumers should de-duplicate on (QueueID, Rcpt,
// Status): a crash can repeat a line, never lose one.
type Record struct {
	Time     time.Time `json:"time"`
	QueueID  string    `json:"queue_id"`
	Rcpt     int       `json:"rcpt"`
	Kind     Kind      `json:"kind"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Route    string    `json:"route,omitempty"`
	Size     int64     `json:"size"`
	Status   Status    `json:"status"`
	PeerID   string    `json:"peer_id,omitempty"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error,omitempty"`
}
