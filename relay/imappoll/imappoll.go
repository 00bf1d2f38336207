// Package imappoll fetches handset replies (MM3-style email from a carrier's
// gateway) from IMAP mailboxes and hands each one to the relay exactly once.
//
// # Design
//
// One goroutine per Mailbox keeps one IMAP connection: dial (TLS, STARTTLS
// or, for tests on loopback, none), AUTHENTICATE PLAIN (LOGIN when the server
// does not offer it), SELECT the folder, then repeat "sync, wait". The wait
// is IDLE when the server has it (woken by an EXISTS, which the
// unilateral-data handler only signals on a channel: no command is ever sent
// from there, and IDLE is stopped with DONE before the next command), else
// the polling interval; with IDLE the interval still bounds the wait, so a
// missed notification or a failed handler is retried. go-imap's client does
// not reconnect, so a dropped connection ends the session and the goroutine
// dials again after an exponential backoff with jitter.
//
// A sync hands over every message above the last UID handed over, oldest
// first. Bodies are fetched with BODY.PEEK[], so a failed run leaves them
// unseen. The order for one message is:
//
//  1. fetch it (skipped, logged and never handed over if larger than
//     Options.MaxSize: it stays in the folder);
//  2. call the Handler; an error stops this sync and the message is tried
//     again at the next one, still in the folder and unseen;
//  3. record in the store (table store.IMAPState) that the UID, with the
//     message's SHA-256 and Message-ID, was handed over (LastUID and a
//     pending entry), before touching the message on the server;
//  4. move it to Mailbox.Processed (or flag it \Deleted and UID EXPUNGE it);
//  5. drop the pending entry.
//
// A crash or a dropped connection between 2 and 3 can repeat the handler
// once (the store write is what the relay's handler may deduplicate on with
// the Message-ID); one after 3 does not: the next sync finds the UID pending,
// does not call the Handler again and only finishes the move. A changed
// UIDVALIDITY restarts the mailbox from scratch (logged); messages that were
// pending under the old UIDVALIDITY are then recognised by their SHA-256 and
// only moved.
//
// # Moving without MOVE or UIDPLUS
//
// go-imap's Client.Move falls back to COPY, STORE \Deleted and a plain
// EXPUNGE when the server lacks MOVE, and a plain EXPUNGE removes every
// \Deleted message in the folder, also other clients'. The poller therefore
// calls Move only when MOVE is advertised, and otherwise does UID COPY, UID
// STORE +FLAGS.SILENT (\Deleted) and UID EXPUNGE when UIDPLUS is advertised;
// without UIDPLUS it leaves the message flagged \Deleted (it is skipped from
// then on) and logs that it did. That the COPY was done is recorded, so a
// retry does not copy twice.
//
// # Dovecot after a crash
//
// A Dovecot killed in the middle of a MOVE leaves the destination folder's
// Maildir dotlock (dovecot-uidlist.lock). Dovecot 2.3.19 after a restart
// holds a MOVE into that folder for about 122 s and then answers NO
// [SERVERBUG] Timeout while waiting for lock; the next MOVE goes through,
// the lock then being stale. The poller keeps such a message pending and
// retries after reconnecting: replies are late, none is lost or repeated.
package imappoll

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/mail"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// Defaults applied by New.
const (
	DefaultFolder     = "INBOX"
	DefaultInterval   = time.Minute
	DefaultMaxSize    = 50 << 20
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// TLS modes of Mailbox.TLS.
const (
	TLSNone     = "none"     // plaintext: only for loopback and tests
	TLSStartTLS = "starttls" // STARTTLS on a plaintext port (143)
	TLSImplicit = "tls"      // TLS from the first byte (993)
)

// Mailbox is one IMAP folder the poller drains.
type Mailbox struct {
	// Name identifies the mailbox in logs and is its key in the store; it
	// must be unique among the Poller's mailboxes and stable across
	// restarts. Empty means "Username@Addr/Folder".
	Name string
	// Addr is the server as host:port.
	Addr string
	// TLS is "tls", "starttls" or "none"; empty means "tls".
	TLS string
	// TLSConfig configures TLS and STARTTLS; nil means the system roots.
	// An empty ServerName is set to Addr's host.
	TLSConfig *tls.Config
	// Username and Password authenticate with AUTHENTICATE PLAIN, or with
	// LOGIN when the server does not offer AUTH=PLAIN.
	Username, Password string
	// Folder is the folder polled; empty means INBOX.
	Folder string
	// Processed is the folder messages are moved to after they were handed
	// over; it is created if missing. Empty means flag \Deleted and UID
	// EXPUNGE instead.
	Processed string
	// Interval is how often the folder is polled when the server has no
	// IDLE, and the longest an IDLE lasts before a poll; 0 means one minute.
	Interval time.Duration
}

// Handler takes one raw RFC 5322 message fetched from a mailbox. It returns
// nil only once the reply is durably queued: the message is then moved away
// and never handed over again. A non-nil error leaves the message in the
// folder, unseen, and it is handed over again later; a message the relay
// rejects for good should be dealt with (bounced, logged) and answered with
// nil. raw is not used by the poller after Handler returns.
type Handler func(ctx context.Context, raw []byte) error

// DialFunc opens the TCP connection to addr; net.Dialer.DialContext fits.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options configures a Poller.
type Options struct {
	Mailboxes []Mailbox
	Handler   Handler
	// State keeps, per mailbox, the UIDVALIDITY, the last UID handed over
	// and the messages handed over but not yet moved (table
	// store.IMAPState, key Mailbox.Name).
	State store.KV
	// Logger receives the poller's logs; nil discards them.
	Logger *slog.Logger
	// Dial opens connections; nil uses a net.Dialer with a 30 s timeout.
	// A test seam.
	Dial DialFunc
	// MaxSize is the largest message handed over, in bytes; larger ones
	// are logged and left in the folder. 0 means 50 MB.
	MaxSize int64
	// MinBackoff and MaxBackoff bound the wait before reconnecting after a
	// failed session (doubled each time, with jitter). 0 means 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// DebugWriter, if set, receives the IMAP transcripts. They include the
	// credentials and message bodies: for debugging only.
	DebugWriter io.Writer
}

// Poller drains IMAP mailboxes into a Handler. Create it with New.
type Poller struct {
	opts Options
	log  *slog.Logger

	// beforeMove, if set, runs after the handed-over record is stored and
	// before the move; an error stops the sync there. A test seam for a
	// crash between hand-over and move.
	beforeMove func(mb *Mailbox, uid imap.UID) error
}

// New checks opts, applies the defaults and returns a Poller.
func New(opts Options) (*Poller, error) {
	var errs []error
	if opts.Handler == nil {
		errs = append(errs, errors.New("imappoll: no Handler"))
	}
	if opts.State == nil {
		errs = append(errs, errors.New("imappoll: no State store"))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second}
		opts.Dial = d.DialContext
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	mbs := slices.Clone(opts.Mailboxes)
	names := make(map[string]bool)
	for i := range mbs {
		mb := &mbs[i]
		if mb.Folder == "" {
			mb.Folder = DefaultFolder
		}
		if mb.TLS == "" {
			mb.TLS = TLSImplicit
		}
		if mb.Interval <= 0 {
			mb.Interval = DefaultInterval
		}
		if mb.Name == "" {
			mb.Name = mb.Username + "@" + mb.Addr + "/" + mb.Folder
		}
		if names[mb.Name] {
			errs = append(errs, fmt.Errorf("imappoll: mailbox %q: duplicate name", mb.Name))
		}
		names[mb.Name] = true
		if _, _, err := net.SplitHostPort(mb.Addr); err != nil {
			errs = append(errs, fmt.Errorf("imappoll: mailbox %q: addr: %w", mb.Name, err))
		}
		switch mb.TLS {
		case TLSNone, TLSStartTLS, TLSImplicit:
		default:
			errs = append(errs, fmt.Errorf("imappoll: mailbox %q: TLS %q is not tls, starttls or none", mb.Name, mb.TLS))
		}
		if mb.Processed == mb.Folder {
			errs = append(errs, fmt.Errorf("imappoll: mailbox %q: Processed is the polled folder", mb.Name))
		}
	}
	opts.Mailboxes = mbs
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Poller{opts: opts, log: opts.Logger}, nil
}

// Run polls every mailbox concurrently until ctx is done, reconnecting with
// backoff whenever a connection fails, and returns ctx.Err().
func (p *Poller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range p.opts.Mailboxes {
		mb := &p.opts.Mailboxes[i]
		wg.Go(func() { p.runMailbox(ctx, mb) })
	}
	wg.Wait()
	<-ctx.Done() // also with no mailboxes
	return ctx.Err()
}

// runMailbox runs sessions for mb until ctx is done.
func (p *Poller) runMailbox(ctx context.Context, mb *Mailbox) {
	log := p.log.With("mailbox", mb.Name)
	backoff := p.opts.MinBackoff
	for ctx.Err() == nil {
		progressed, err := p.safeSession(ctx, mb, log)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = p.opts.MinBackoff
		}
		// Full jitter on the upper half: wait in [backoff/2, backoff).
		wait := backoff/2 + rand.N(backoff/2+1)
		log.Warn("imap session ended; reconnecting", "err", err, "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, p.opts.MaxBackoff)
	}
}

// safeSession runs session and turns a panic into an error.
func (p *Poller) safeSession(ctx context.Context, mb *Mailbox, log *slog.Logger) (progressed bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("imap session panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("imappoll: panic: %v", r)
		}
	}()
	return p.session(ctx, mb, log)
}

// handlerError is a Handler failure: the session stays up and retries later.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return "handler: " + e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// session connects, logs in, selects mb.Folder and syncs until the
// connection fails or ctx is done. progressed reports whether at least one
// sync completed, which resets the reconnect backoff.
func (p *Poller) session(ctx context.Context, mb *Mailbox, log *slog.Logger) (progressed bool, err error) {
	c, err := p.connect(ctx, mb)
	if err != nil {
		return false, err
	}
	// Closing the connection is what interrupts a blocked command when ctx
	// is done; go-imap commands take no context.
	stop := context.AfterFunc(ctx, func() { c.client.Close() })
	defer stop()
	defer c.client.Close()

	if err := p.login(c.client, mb); err != nil {
		return false, err
	}
	caps := c.client.Caps()
	if mb.Processed != "" {
		err := c.client.Create(mb.Processed, nil).Wait()
		var ierr *imap.Error
		if err != nil && !(errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists) {
			// Dovecot and others without the code say NO; the MOVE will
			// tell if it really is missing.
			log.Debug("imap create processed folder", "folder", mb.Processed, "err", err)
		}
	}
	sel, err := c.client.Select(mb.Folder, nil).Wait()
	if err != nil {
		return false, fmt.Errorf("select %q: %w", mb.Folder, err)
	}
	sess := &syncer{p: p, mb: mb, c: c.client, caps: caps, log: log, uidValidity: sel.UIDValidity}
	log.Info("imap session ready", "folder", mb.Folder, "uidvalidity", sel.UIDValidity,
		"messages", sel.NumMessages, "idle", caps.Has(imap.CapIdle), "move", caps.Has(imap.CapMove),
		"uidplus", caps.Has(imap.CapUIDPlus))

	for {
		err := sess.sync(ctx)
		var herr *handlerError
		switch {
		case ctx.Err() != nil:
			return progressed, ctx.Err()
		case errors.As(err, &herr):
			log.Warn("imap handler failed; message left in folder, unseen, for a retry", "err", herr.err)
		case err != nil:
			return progressed, err
		default:
			progressed = true
		}
		if err := p.wait(ctx, mb, c, caps.Has(imap.CapIdle)); err != nil {
			return progressed, err
		}
	}
}

// conn is a connected client and the channel its unilateral-data handler
// signals new messages on.
type conn struct {
	client *imapclient.Client
	exists chan struct{}
}

// connect dials mb and waits for the greeting (after STARTTLS if asked).
func (p *Poller) connect(ctx context.Context, mb *Mailbox) (*conn, error) {
	raw, err := p.opts.Dial(ctx, "tcp", mb.Addr)
	if err != nil {
		return nil, err
	}
	// Bound the TLS handshake, greeting and STARTTLS by ctx too.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	exists := make(chan struct{}, 1)
	opts := &imapclient.Options{
		DebugWriter: p.opts.DebugWriter,
		TLSConfig:   tlsConfig(mb),
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			// Runs in the client's reader goroutine: it must not send
			// commands (that would deadlock), only signal.
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case exists <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	var c *imapclient.Client
	switch mb.TLS {
	case TLSImplicit:
		tc := tls.Client(raw, opts.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		c = imapclient.New(tc, opts)
	case TLSStartTLS:
		c, err = imapclient.NewStartTLS(raw, opts)
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("starttls: %w", err)
		}
	default:
		c = imapclient.New(raw, opts)
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if ctx.Err() != nil {
		c.Close()
		return nil, ctx.Err()
	}
	return &conn{client: c, exists: exists}, nil
}

// tlsConfig returns mb's TLS config with ServerName set.
func tlsConfig(mb *Mailbox) *tls.Config {
	var cfg *tls.Config
	if mb.TLSConfig != nil {
		cfg = mb.TLSConfig.Clone()
	} else {
		cfg = new(tls.Config)
	}
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(mb.Addr)
		cfg.ServerName = host
	}
	return cfg
}

// login authenticates with AUTHENTICATE PLAIN, or LOGIN without AUTH=PLAIN.
func (p *Poller) login(c *imapclient.Client, mb *Mailbox) error {
	if c.Caps().Has(imap.AuthCap(sasl.Plain)) {
		if err := c.Authenticate(sasl.NewPlainClient("", mb.Username, mb.Password)); err != nil {
			return fmt.Errorf("authenticate plain as %q: %w", mb.Username, err)
		}
		return nil
	}
	if err := c.Login(mb.Username, mb.Password).Wait(); err != nil {
		return fmt.Errorf("login as %q: %w", mb.Username, err)
	}
	return nil
}

// wait blocks until new mail may be there: an EXISTS during IDLE, or
// mb.Interval. It stops IDLE (DONE) before returning, so the caller may send
// commands again.
func (p *Poller) wait(ctx context.Context, mb *Mailbox, c *conn, idle bool) error {
	timer := time.NewTimer(mb.Interval)
	defer timer.Stop()
	if !idle {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.client.Closed():
			return errors.New("connection closed")
		case <-timer.C:
			return nil
		}
	}
	cmd, err := c.client.Idle()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-c.client.Closed():
	case <-c.exists:
	case <-timer.C:
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("idle done: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	return ctx.Err()
}

// mailboxState is what the store keeps per mailbox.
type mailboxState struct {
	UIDValidity uint32 `json:"uidvalidity"`
	// LastUID is the highest UID handed over (or skipped for its size).
	LastUID imap.UID `json:"last_uid"`
	// Pending are handed over and not yet known to be moved.
	Pending []handedOver `json:"pending,omitempty"`
	// Stale were pending when UIDVALIDITY changed; matched by SHA256.
	Stale []handedOver `json:"stale,omitempty"`
}

// handedOver records one message given to the Handler.
type handedOver struct {
	UID       imap.UID  `json:"uid"`
	SHA256    string    `json:"sha256"`
	MessageID string    `json:"message_id,omitempty"`
	Copied    bool      `json:"copied,omitempty"` // COPY fallback done
	At        time.Time `json:"at"`
}

// syncer runs syncs for one session.
type syncer struct {
	p           *Poller
	mb          *Mailbox
	c           *imapclient.Client
	caps        imap.CapSet
	log         *slog.Logger
	uidValidity uint32
}

func (s *syncer) load(ctx context.Context) (*mailboxState, error) {
	var st mailboxState
	err := s.p.opts.State.GetKV(ctx, store.IMAPState, s.mb.Name, &st)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("load state: %w", err)
	}
	return &st, nil
}

// save stores st. It is not cut short by the end of ctx (only bounded by
// saveTimeout): a record that a message was handed over must be written even
// while the poller is shutting down, or the message would be handed over
// again after the restart.
func (s *syncer) save(ctx context.Context, st *mailboxState) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	if err := s.p.opts.State.PutKV(ctx, store.IMAPState, s.mb.Name, st); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// sync finishes pending moves, then hands over and moves every new message.
func (s *syncer) sync(ctx context.Context) error {
	st, err := s.load(ctx)
	if err != nil {
		return err
	}
	if st.UIDValidity != s.uidValidity {
		if st.UIDValidity != 0 {
			s.log.Warn("imap UIDVALIDITY changed; restarting the folder from scratch",
				"old", st.UIDValidity, "new", s.uidValidity, "last_uid", st.LastUID, "pending", len(st.Pending))
		}
		st.Stale = append(st.Stale, st.Pending...)
		for i := range st.Stale {
			st.Stale[i].Copied = false
		}
		*st = mailboxState{UIDValidity: s.uidValidity, Stale: st.Stale}
		if err := s.save(ctx, st); err != nil {
			return err
		}
	}
	if err := s.finishPending(ctx, st); err != nil {
		return err
	}

	// New messages: UID last+1:* that are not \Deleted. "n:*" matches the
	// highest UID even below n, hence the filter.
	crit := &imap.SearchCriteria{
		UID:     []imap.UIDSet{{imap.UIDRange{Start: st.LastUID + 1, Stop: 0}}},
		NotFlag: []imap.Flag{imap.FlagDeleted},
	}
	data, err := s.c.UIDSearch(crit, nil).Wait()
	if err != nil {
		return fmt.Errorf("uid search: %w", err)
	}
	var uids []imap.UID
	for _, u := range data.AllUIDs() {
		if u > st.LastUID {
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	if len(uids) == 0 {
		if len(st.Stale) > 0 {
			// Every message of the new UIDVALIDITY was looked at.
			st.Stale = nil
			return s.save(ctx, st)
		}
		return nil
	}
	sizes, err := s.sizes(uids)
	if err != nil {
		return err
	}
	for _, uid := range uids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.one(ctx, st, uid, sizes); err != nil {
			return err
		}
	}
	return nil
}

// one hands over and moves the message uid.
func (s *syncer) one(ctx context.Context, st *mailboxState, uid imap.UID, sizes map[imap.UID]int64) error {
	log := s.log.With("uid", uid)
	size, ok := sizes[uid]
	if !ok {
		log.Debug("imap message vanished before fetch")
		return nil
	}
	var raw []byte
	tooBig := size > s.p.opts.MaxSize
	if !tooBig {
		var err error
		raw, ok, err = s.fetch(uid)
		switch {
		case err == errTooLarge:
			tooBig = true
		case err != nil:
			return err
		case !ok:
			log.Debug("imap message vanished before fetch")
			return nil
		}
	}
	if tooBig {
		log.Warn("imap message over the size limit; skipped, left in the folder and not handed over",
			"size", size, "max", s.p.opts.MaxSize)
		st.LastUID = uid
		return s.save(ctx, st)
	}
	sum := sha256.Sum256(raw)
	h := handedOver{UID: uid, SHA256: hex.EncodeToString(sum[:]), MessageID: messageID(raw), At: time.Now().UTC()}
	log = log.With("message_id", h.MessageID)

	if i := slices.IndexFunc(st.Stale, func(o handedOver) bool { return o.SHA256 == h.SHA256 }); i >= 0 {
		log.Info("imap message was handed over before the UIDVALIDITY change; moving it only")
		st.Stale = slices.Delete(st.Stale, i, i+1)
	} else if err := s.callHandler(ctx, raw); err != nil {
		return &handlerError{err}
	} else {
		log.Info("imap message handed over", "size", len(raw))
	}

	st.LastUID = uid
	st.Pending = append(st.Pending, h)
	if err := s.save(ctx, st); err != nil {
		// Not recorded, so move it now if we can: gone from the folder it
		// cannot be handed over twice.
		if merr := s.move(ctx, st, &st.Pending[len(st.Pending)-1], log); merr != nil {
			log.Error("imap message handed over but neither recorded nor moved: it may be handed over again",
				"err", err, "move_err", merr)
		}
		return err
	}
	return s.finish(ctx, st, len(st.Pending)-1, log)
}

// finish moves st.Pending[i] and drops it from st.
func (s *syncer) finish(ctx context.Context, st *mailboxState, i int, log *slog.Logger) error {
	if hook := s.p.beforeMove; hook != nil {
		if err := hook(s.mb, st.Pending[i].UID); err != nil {
			return err
		}
	}
	if err := s.move(ctx, st, &st.Pending[i], log); err != nil {
		return err
	}
	st.Pending = slices.Delete(st.Pending, i, i+1)
	return s.save(ctx, st)
}

// finishPending moves the messages handed over whose move is not known to
// be done, without handing them over again; those no longer in the folder
// (or already flagged \Deleted) are dropped from the record.
func (s *syncer) finishPending(ctx context.Context, st *mailboxState) error {
	if len(st.Pending) == 0 {
		return nil
	}
	var set imap.UIDSet
	for _, h := range st.Pending {
		set.AddNum(h.UID)
	}
	data, err := s.c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}, NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("uid search pending: %w", err)
	}
	present := data.AllUIDs()
	for i := 0; i < len(st.Pending); {
		h := st.Pending[i]
		log := s.log.With("uid", h.UID, "message_id", h.MessageID)
		if !slices.Contains(present, h.UID) {
			log.Info("imap message handed over earlier is no longer in the folder")
			st.Pending = slices.Delete(st.Pending, i, i+1)
			if err := s.save(ctx, st); err != nil {
				return err
			}
			continue
		}
		log.Info("imap message was already handed over; not handing it over again, moving it")
		if err := s.finish(ctx, st, i, log); err != nil {
			return err
		}
	}
	return nil
}

// move moves h to the Processed folder, or deletes it. Only the message's own
// UID is ever expunged.
func (s *syncer) move(ctx context.Context, st *mailboxState, h *handedOver, log *slog.Logger) error {
	set := imap.UIDSetNum(h.UID)
	if s.mb.Processed != "" {
		if s.caps.Has(imap.CapMove) {
			if _, err := s.c.Move(set, s.mb.Processed).Wait(); err != nil {
				return fmt.Errorf("uid move to %q: %w", s.mb.Processed, err)
			}
			return nil
		}
		if !h.Copied {
			if _, err := s.c.Copy(set, s.mb.Processed).Wait(); err != nil {
				return fmt.Errorf("uid copy to %q: %w", s.mb.Processed, err)
			}
			h.Copied = true
			if err := s.save(ctx, st); err != nil {
				return err
			}
		}
	}
	if err := s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return fmt.Errorf("uid store \\Deleted: %w", err)
	}
	if !s.caps.Has(imap.CapUIDPlus) {
		log.Warn("imap server has no UIDPLUS: message left flagged \\Deleted and not expunged, since a plain EXPUNGE would also remove other clients' deleted messages")
		return nil
	}
	if err := s.c.UIDExpunge(set).Close(); err != nil {
		return fmt.Errorf("uid expunge: %w", err)
	}
	return nil
}

// sizes returns the RFC822.SIZE of each of uids still in the folder.
func (s *syncer) sizes(uids []imap.UID) (map[imap.UID]int64, error) {
	msgs, err := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return nil, fmt.Errorf("uid fetch rfc822.size: %w", err)
	}
	m := make(map[imap.UID]int64, len(msgs))
	for _, msg := range msgs {
		if msg.UID != 0 {
			m[msg.UID] = msg.RFC822Size
		}
	}
	return m, nil
}

var errTooLarge = errors.New("message too large")

// saveTimeout bounds one write of the mailbox state.
const saveTimeout = 30 * time.Second

// fetch returns the whole message uid with BODY.PEEK[] (so it stays
// unseen); ok is false if it is no longer there. It reads at most
// MaxSize bytes, whatever RFC822.SIZE said.
func (s *syncer) fetch(uid imap.UID) (raw []byte, ok bool, err error) {
	section := &imap.FetchItemBodySection{Peek: true}
	cmd := s.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	defer cmd.Close()
	limit := s.p.opts.MaxSize
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var got imap.UID
		var body []byte
		var found bool
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				got = it.UID
			case imapclient.FetchItemDataBodySection:
				found = true
				if it.Literal == nil {
					continue
				}
				if it.Literal.Size() > limit {
					err = errTooLarge
					continue
				}
				b, rerr := io.ReadAll(io.LimitReader(it.Literal, limit+1))
				if rerr == nil && int64(len(b)) < it.Literal.Size() {
					// go-imap reports a connection closed mid-literal as a
					// plain io.EOF: the body is truncated.
					rerr = io.ErrUnexpectedEOF
				}
				if rerr != nil {
					// The connection failed mid-literal. Close the client
					// (which waits for its reader goroutine) before anything
					// drains the literal: go-imap v2.0.0-beta.8 lets its
					// decoder read on once the literal reader returned an
					// error or EOF, and draining the rest of the literal
					// (FetchMessageData.Next does) would read the same
					// bufio.Reader concurrently (seen with -race, Dovecot
					// killed mid-fetch).
					s.c.Close()
					return nil, false, fmt.Errorf("uid fetch body: %w", rerr)
				}
				if int64(len(b)) > limit {
					err = errTooLarge
					continue
				}
				body = b
			}
		}
		if got == uid && found {
			raw, ok = body, true
		}
	}
	if cerr := cmd.Close(); cerr != nil {
		return nil, false, fmt.Errorf("uid fetch body: %w", cerr)
	}
	if err != nil {
		return nil, false, err
	}
	if ok && raw == nil {
		raw = []byte{}
	}
	return raw, ok, nil
}

// callHandler calls the Handler, turning a panic into an error.
func (s *syncer) callHandler(ctx context.Context, raw []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("imap handler panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return s.p.opts.Handler(ctx, raw)
}

// messageID returns the Message-ID header of raw, or "".
func messageID(raw []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	return m.Header.Get("Message-Id")
}
