package relay

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/mmsrelay/mmsrelay/adapt"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/relay/deliver"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// Route sends the numbers that start with Prefix via a route of
// relay/deliver, converted for Profile.
type Route struct {
	Name    string // for logs, records and metrics, e.g. "mm4:+44"
	Prefix  string // E.164 prefix; "+" matches all
	Via     deliver.Route
	Profile adapt.Profile
}

// EmailSender sends an email and reports per recipient
// (deliver.Mailer does, to a smarthost or the recipients' MX).
type EmailSender interface {
	Send(ctx context.Context, from string, rcpts []string, msg []byte) []deliver.Result
}

// Peer is an MMSC whose MM4 traffic we take, recognised by source address,
// verified TLS client name or SMTP AUTH user.
type Peer struct {
	Name     string
	Networks []netip.Prefix
	TLSNames []string
	Users    []string
}

// Quota limits a sender ("addr@example.com" or "@example.com").
type Quota struct {
	Sender  string
	PerHour int
	PerDay  int
}

// Stores are the parts of the store the relay uses. They stay the same
// across Reload.
type Stores struct {
	Queue store.Queue // required
	KV    store.KV    // required: dedup keys, quarantine
	// Admin lists, retries and drops for the admin API and purges
	// finished messages every Queue.PurgeEvery; nil: neither.
	Admin store.Admin
	// Space checks free space at MAIL; nil: no check.
	Space store.SpaceChecker
}

// SMTPOptions are the SMTP front's: limits, TLS, who may send what.
type SMTPOptions struct {
	MaxMessageBytes int64 // default 25 MiB
	MaxRecipients   int   // default 50
	// TLSConfig returns the current server certificate configuration (it
	// may change on reload); nil or a nil result: no STARTTLS.
	TLSConfig func() *tls.Config
	// Trusted clients skip the sender checks and limits; nil: loopback.
	Trusted        func(netip.Addr) bool
	MaxConnsPerIP  int // default 20
	SenderPerHour  int // 0: no limit
	AllowedSenders []string
	Quotas         []Quota
	Users          map[string]string // submission users: name → bcrypt hash
	ReadTimeout    time.Duration     // default 5m
}

// ConversionOptions say how an email becomes an MMS.
type ConversionOptions struct {
	Recipients      mapping.RecipientOptions
	GroupMode       string // "group" (default) or "individual"
	SubjectMaxChars int
	Expiry          time.Duration
	DeliveryReport  bool
	MessageClass    string
	KeepHistory     bool // do not strip quoted history
}

// QueueOptions are the workers' and the retry policy's.
type QueueOptions struct {
	Lifetime        time.Duration // default 48h
	RetryMin        time.Duration // default 1m
	RetryMax        time.Duration // default 1h
	Workers         int           // default 4
	ResponseTimeout time.Duration // default 1h: how long an MM4 peer has to answer
	// Lease is how long a claim holds before another worker may take the
	// recipient again; it must cover conversion and delivery. Default 10m.
	Lease time.Duration
	// KeepBodies and KeepRecords are the retention of finished messages
	// and of delivery records (store.PurgeOptions); 0 keeps them forever.
	KeepBodies, KeepRecords time.Duration
	// PurgeEvery is how often finished messages and expired reply tokens
	// are purged; default 1h.
	PurgeEvery time.Duration
}

// Options are what a Relay needs. Zero values take the defaults noted;
// withDefaults applies them, in one place.
type Options struct {
	Hostname string       // default "localhost"
	Logger   *slog.Logger // nil: discard
	// Now is the clock; nil: time.Now. A test seam.
	Now func() time.Time

	Store      Stores
	SMTP       SMTPOptions
	Conversion ConversionOptions
	Queue      QueueOptions

	Postmaster       string // where postmaster@ and abuse@ mail goes
	OriginatorSystem string // our MM4 system address; default system@ the first MMS domain

	Routes []Route
	Peers  []Peer
	// Replies, when set, masks the MMS sender with a reply address and
	// takes handset replies back to email; nil: the sender's own address.
	Replies *ReplyOptions
	// Mailer sends the relay's own email (bounces, reports); nil: such
	// mail waits in the queue.
	Mailer EmailSender
}

// withDefaults checks o and returns it with the defaults applied.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Store.Queue == nil {
		errs = append(errs, errors.New("relay: no store queue"))
	}
	if o.Store.KV == nil {
		errs = append(errs, errors.New("relay: no store key/value tables"))
	}
	if len(o.Routes) == 0 {
		errs = append(errs, errors.New("relay: no routes"))
	}
	if err := errors.Join(errs...); err != nil {
		return o, err
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &o.SMTP
	if s.MaxMessageBytes <= 0 {
		s.MaxMessageBytes = 25 << 20
	}
	if s.MaxRecipients <= 0 {
		s.MaxRecipients = 50
	}
	if s.MaxConnsPerIP <= 0 {
		s.MaxConnsPerIP = 20
	}
	if s.Trusted == nil {
		s.Trusted = func(a netip.Addr) bool { return a.Unmap().IsLoopback() }
	}
	if s.ReadTimeout <= 0 {
		s.ReadTimeout = 5 * time.Minute
	}
	if o.Conversion.GroupMode == "" {
		o.Conversion.GroupMode = "group"
	}
	q := &o.Queue
	if q.Lifetime <= 0 {
		q.Lifetime = 48 * time.Hour
	}
	if q.RetryMin <= 0 {
		q.RetryMin = time.Minute
	}
	if q.RetryMax <= 0 {
		q.RetryMax = time.Hour
	}
	if q.Workers <= 0 {
		q.Workers = 4
	}
	if q.ResponseTimeout <= 0 {
		q.ResponseTimeout = time.Hour
	}
	if q.Lease <= 0 {
		q.Lease = 10 * time.Minute
	}
	if q.PurgeEvery <= 0 {
		q.PurgeEvery = time.Hour
	}
	if o.OriginatorSystem == "" && len(o.Conversion.Recipients.Domains) > 0 {
		o.OriginatorSystem = "system@" + o.Conversion.Recipients.Domains[0]
	}
	return o, nil
}

// ownerID names this process among the relays sharing a queue: host,
// process id and a random part (a restarted process is another owner).
func ownerID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
