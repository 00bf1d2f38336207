// Package relay is the running system: SMTP listeners that take mail for
// the MMS domains into the durable store, queue workers that convert each
// message for its route and deliver it, and the handling of what MMSCs send
// back (MM4 answers and delivery reports).
//
// New wires the parts from Options; nothing here reads the configuration
// file or a global. The parts, each with its own dependencies:
//
//	front (smtp.go)        SMTP sessions and the RCPT policy; DATA streams into store.Queue
//	answers (mm4in.go)     MM4 answers and reports to the system address, inside DATA
//	worker (worker.go)     claims leases, hands each job to its kind's processor, records
//	policy (policy.go)     retry, backoff, lifetime and bounce: what a verdict becomes
//	processors             mmsOut (mmsout.go), emailOut (emailout.go), replyIn (reply.go)
//	watcher (mm4in.go)     resends what a peer took but never answered (Queue.Awaiting)
//	notifier (bounce.go)   DSNs to the sender
//
// Relay itself is the lifecycle (New, Reload, Serve, Shutdown, Run, Kick)
// and the doors from outside: AcceptReply for polled mailboxes,
// AdminHandler for the admin API, Metrics.
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
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// Relay is the running relay.
type Relay struct {
	cur     atomic.Pointer[Options]
	log     *slog.Logger
	st      Stores
	kick    chan struct{}
	limits  *limits
	metrics *Metrics
	owner   string

	notes   *notifier
	answers *answers
	front   *front

	mu      sync.Mutex
	servers []*smtp.Server
	closing bool
}

// New checks opts and builds a relay.
func New(opts Options) (*Relay, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Relay{log: o.Logger, st: o.Store, kick: make(chan struct{}, 1),
		limits: newLimits(o.SMTP.MaxConnsPerIP), metrics: newMetrics(), owner: ownerID()}
	r.cur.Store(&o)
	r.notes = &notifier{queue: o.Store.Queue, metrics: r.metrics, kick: r.Kick}
	r.answers = &answers{queue: o.Store.Queue, notes: r.notes, metrics: r.metrics, log: r.log, kick: r.Kick}
	r.front = &front{opts: r.o, queue: o.Store.Queue, space: o.Store.Space, limits: r.limits, metrics: r.metrics,
		log: r.log, kick: r.Kick, answers: r.answers}
	r.metrics.Gauge("mmsrelay_queue_depth", r.queueDepth)
	return r, nil
}

// queueDepth counts the recipients waiting for delivery or being
// delivered, for /metrics, from the store's counters.
func (r *Relay) queueDepth() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := r.st.Queue.Counts(ctx)
	if err != nil {
		return math.NaN()
	}
	return float64(c[store.Queued] + c[store.Deferred] + c[store.Delivering])
}

// o returns the options in force. Reload replaces them as a whole; each
// SMTP command and each job takes one snapshot.
func (r *Relay) o() *Options { return r.cur.Load() }

// Reload puts new options in force without dropping a session: routes,
// limits, domains, peers, users and conversion settings apply to the next
// command and the next job. The store and the logger stay.
func (r *Relay) Reload(opts Options) error {
	old := r.o()
	opts.Store, opts.Logger = old.Store, old.Logger
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	r.limits.setMaxConns(o.SMTP.MaxConnsPerIP)
	r.cur.Store(&o)
	r.Kick()
	return nil
}

// Metrics returns the relay's counters.
func (r *Relay) Metrics() *Metrics { return r.metrics }

// Serve takes SMTP sessions from l until Shutdown. A submission listener
// demands STARTTLS and AUTH before MAIL.
func (r *Relay) Serve(l net.Listener, submission bool) error {
	o := r.o()
	s := smtp.NewServer(&backend{f: r.front, submission: submission})
	s.Domain = o.Hostname
	s.MaxMessageBytes = o.SMTP.MaxMessageBytes
	s.MaxRecipients = o.SMTP.MaxRecipients
	s.ReadTimeout = o.SMTP.ReadTimeout
	s.WriteTimeout = time.Minute
	s.EnableSMTPUTF8 = true
	s.MaxLineLength = 64 * 1024 // RFC 5322 says 998; real senders send longer
	s.EnableDSN = true
	s.ErrorLog = slogLogger{r.log}
	if o.SMTP.TLSConfig != nil {
		if cfg := o.SMTP.TLSConfig(); cfg != nil {
			// A client certificate, when one is offered, must verify
			// against the system's roots: only then does its name count
			// to recognise an MMSC peer (mm4_peer.tls_names).
			roots, _ := x509.SystemCertPool()
			s.TLSConfig = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				c := r.o().SMTP.TLSConfig().Clone()
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

// Run runs the queue workers, the MM4 answer watcher and the hourly purge
// until ctx is done. Work in flight finishes or is left claimed; its lease
// runs out and a worker takes it again: a message is never lost, at worst
// sent again with the same ids.
func (r *Relay) Run(ctx context.Context) error {
	o := r.o()
	w := &worker{queue: r.st.Queue, opts: r.o, owner: r.owner, log: r.log, metrics: r.metrics, kick: r.kick,
		policy: &policy{queue: r.st.Queue, notes: r.notes, metrics: r.metrics, log: r.log, kick: r.Kick},
		processors: map[store.Kind]processor{
			store.KindMMS:        &mmsOut{kv: r.st.KV, metrics: r.metrics},
			store.KindEmail:      &emailOut{metrics: r.metrics},
			store.KindPostmaster: &emailOut{metrics: r.metrics},
			store.KindReply:      &replyIn{queue: r.st.Queue, kv: r.st.KV, metrics: r.metrics, kick: r.Kick},
		}}
	watch := &watcher{queue: r.st.Queue, opts: r.o, notes: r.notes, metrics: r.metrics, log: r.log, kick: r.Kick}
	purge := &purger{admin: r.st.Admin, opts: r.o, log: r.log, metrics: r.metrics}
	var wg sync.WaitGroup
	// start runs f until ctx is done: a panic that escapes it is logged
	// and f starts again a second later, so no worker is lost for good.
	start := func(name string, f func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				func() {
					defer func() {
						if p := recover(); p != nil {
							r.log.Error("panic: restarting", "in", name, "panic", p, "stack", string(debug.Stack()))
							sleep(ctx, time.Second)
						}
					}()
					f(ctx)
				}()
			}
		}()
	}
	for i := 0; i < o.Queue.Workers; i++ {
		start("worker", w.run)
	}
	start("watcher", watch.run)
	start("purge", purge.run)
	r.Kick()
	wg.Wait()
	return nil
}

// Kick wakes the workers: new work is due.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// routeFor returns the route of o with the longest prefix of number.
func routeFor(o *Options, number string) (*Route, bool) {
	var best *Route
	for i := range o.Routes {
		rt := &o.Routes[i]
		if len(number) >= len(rt.Prefix) && number[:len(rt.Prefix)] == rt.Prefix && (best == nil || len(rt.Prefix) > len(best.Prefix)) {
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
