// Package relay is the running system: SMTP listeners that take mail for
// the MMS domains into the durable store, queue workers that convert each
// message for its route and deliver it, and the handling of what MMSCs send
// back (MM4 answers and delivery reports).
//
// New wires the parts from Options; nothing here reads the configuration
// file or a global. Serve runs an SMTP listener; Run runs the workers.
package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/adapt"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/relay/deliver"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// Route sends the numbers that start with Prefix through Deliverer.
type Route struct {
	Name      string // for logs, records and metrics, e.g. "mm4:+44"
	Prefix    string // E.164 prefix; "+" matches all
	Deliverer deliver.Deliverer
	Profile   adapt.Profile
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

// Options are what a Relay needs. Zero values take the defaults noted.
type Options struct {
	Hostname string
	Store    store.Store
	Logger   *slog.Logger // nil: discard

	// SMTP.
	MaxMessageBytes int64 // default 25 MiB
	MaxRecipients   int   // default 50
	// TLSConfig returns the current server certificate configuration (it
	// may change on reload); nil or a nil result: no STARTTLS.
	TLSConfig        func() *tls.Config
	Trusted          func(netip.Addr) bool
	MaxConnsPerIP    int // default 20
	SenderPerHour    int // default 1000; 0 after defaults means no limit
	AllowedSenders   []string
	Quotas           []Quota
	Users            map[string]string // submission users: name → bcrypt hash
	Postmaster       string            // where postmaster@ and abuse@ mail goes
	OriginatorSystem string            // our MM4 system address
	ReadTimeout      time.Duration

	// Conversion.
	Recipients      mapping.RecipientOptions
	GroupMode       string // "group" (default) or "individual"
	SubjectMaxChars int
	Expiry          time.Duration
	DeliveryReport  bool
	MessageClass    string
	KeepHistory     bool // do not strip quoted history

	Routes []Route
	Peers  []Peer
	// Replies, when set, masks the MMS sender with a reply address and
	// takes handset replies back to email; nil: the sender's own address.
	Replies *ReplyOptions
	// Mailer sends the relay's own email (bounces, reports); nil: such
	// mail waits in the queue.
	Mailer EmailSender

	// Queue.
	Lifetime        time.Duration // default 48h
	RetryMin        time.Duration // default 1m
	RetryMax        time.Duration // default 1h
	Workers         int           // default 4
	ResponseTimeout time.Duration // default 1h
	// Now is the clock; nil: time.Now. A test seam.
	Now func() time.Time
}

// Relay is the running relay.
type Relay struct {
	cur     atomic.Pointer[Options]
	log     *slog.Logger
	st      store.Store
	kick    chan struct{}
	limits  *limits
	metrics *Metrics

	mu      sync.Mutex
	servers []*smtp.Server
	closing bool
}

// New checks opts and builds a relay.
func New(opts Options) (*Relay, error) {
	if opts.Store == nil {
		return nil, errors.New("relay: no store")
	}
	if len(opts.Routes) == 0 {
		return nil, errors.New("relay: no routes")
	}
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 25 << 20
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = 50
	}
	if opts.MaxConnsPerIP <= 0 {
		opts.MaxConnsPerIP = 20
	}
	if opts.Trusted == nil {
		opts.Trusted = func(a netip.Addr) bool { return a.Unmap().IsLoopback() }
	}
	if opts.GroupMode == "" {
		opts.GroupMode = "group"
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = 48 * time.Hour
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Minute
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Hour
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = time.Hour
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OriginatorSystem == "" && len(opts.Recipients.Domains) > 0 {
		opts.OriginatorSystem = "system@" + opts.Recipients.Domains[0]
	}
	r := &Relay{log: opts.Logger, st: opts.Store, kick: make(chan struct{}, 1),
		limits: newLimits(opts.MaxConnsPerIP), metrics: newMetrics()}
	r.cur.Store(&opts)
	r.metrics.Gauge("mmsrelay_queue_depth", r.queueDepth)
	return r, nil
}

// queueDepth counts the recipients waiting for delivery, for /metrics.
func (r *Relay) queueDepth() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := r.st.List(ctx, store.ListOptions{Limit: 100000})
	if err != nil {
		return math.NaN()
	}
	n := 0
	for _, m := range msgs {
		for _, rc := range m.Rcpts {
			if rc.Status.Waiting() || rc.Status == store.Delivering {
				n++
			}
		}
	}
	return float64(n)
}

// o returns the options in force. Reload replaces them as a whole; each
// SMTP command and each queued message reads them once.
func (r *Relay) o() *Options { return r.cur.Load() }

// Reload puts new options in force without dropping a session: routes,
// limits, domains, peers, users and conversion settings apply to the next
// command and the next message. The store and the logger stay.
func (r *Relay) Reload(opts Options) error {
	old := r.o()
	opts.Store, opts.Logger = old.Store, old.Logger
	n, err := New(opts)
	if err != nil {
		return err
	}
	r.limits.setMaxConns(n.o().MaxConnsPerIP)
	r.cur.Store(n.o())
	r.Kick()
	return nil
}

// Metrics returns the relay's counters.
func (r *Relay) Metrics() *Metrics { return r.metrics }

// Store returns the relay's store.
func (r *Relay) Store() store.Store { return r.st }

// Serve takes SMTP sessions from l until Shutdown. A submission listener
// demands STARTTLS and AUTH before MAIL.
func (r *Relay) Serve(l net.Listener, submission bool) error {
	s := smtp.NewServer(&backend{r: r, submission: submission})
	s.Domain = r.o().Hostname
	s.MaxMessageBytes = r.o().MaxMessageBytes
	s.MaxRecipients = r.o().MaxRecipients
	s.ReadTimeout = r.o().ReadTimeout
	s.WriteTimeout = time.Minute
	s.EnableSMTPUTF8 = true
	s.MaxLineLength = 64 * 1024 // RFC 5322 says 998; real senders send longer
	s.EnableDSN = true
	s.ErrorLog = slogLogger{r.log}
	if r.o().TLSConfig != nil {
		if cfg := r.o().TLSConfig(); cfg != nil {
			// A client certificate, when one is offered, must verify
			// against the system's roots: only then does its name count
			// to recognise an MMSC peer (mm4_peer.tls_names).
			roots, _ := x509.SystemCertPool()
			s.TLSConfig = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				c := r.o().TLSConfig().Clone()
				c.ClientAuth = tls.VerifyClientCertIfGiven
				if c.ClientCAs == nil {
					c.ClientCAs = roots
				}
				return c, nil
			}}
		}
	}
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return smtp.ErrServerClosed
	}
	r.servers = append(r.servers, s)
	r.mu.Unlock()
	err := s.Serve(r.limits.wrap(l))
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops taking new sessions and waits (until ctx is done) for
// those in progress to end.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closing = true
	servers := r.servers
	r.mu.Unlock()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			errs = append(errs, err)
			s.Close()
		}
	}
	return errors.Join(errs...)
}

// Kick wakes the workers: new work is due.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// routeFor returns the route with the longest prefix of number.
func (r *Relay) routeFor(number string) (*Route, bool) {
	var best *Route
	for i := range r.o().Routes {
		rt := &r.o().Routes[i]
		if strings.HasPrefix(number, rt.Prefix) && (best == nil || len(rt.Prefix) > len(best.Prefix)) {
			best = rt
		}
	}
	return best, best != nil
}

// slogLogger adapts slog for go-smtp's error log.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(format string, v ...any) {
	s.l.Debug("smtp", "msg", fmt.Sprintf(format, v...))
}
func (s slogLogger) Println(v ...any) { s.l.Debug("smtp", "msg", fmt.Sprint(v...)) }
