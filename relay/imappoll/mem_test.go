package imappoll

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// memServer is go-imap's in-memory server on a loopback port with one user.
type memServer struct {
	imapUser
	srv *imapserver.Server
}

// loginOnly hides AUTH=PLAIN, so clients must use LOGIN.
type loginOnly struct {
	imapserver.SessionIMAP4rev2
	logins *atomic.Int32
}

func (s loginOnly) AuthenticateMechanisms() []string { return nil }
func (s loginOnly) Authenticate(string) (sasl.Server, error) {
	return nil, errors.New("no SASL")
}
func (s loginOnly) Login(user, pass string) error {
	s.logins.Add(1)
	return s.SessionIMAP4rev2.Login(user, pass)
}

// newMemServer starts imapmemserver with caps (nil: IMAP4rev2, which
// implies MOVE and UIDPLUS) and user "alice" with an INBOX.
func newMemServer(t *testing.T, caps imap.CapSet) *memServer {
	t.Helper()
	return newMemServerWith(t, caps, nil)
}

// newMemServerWith is newMemServer with wrap applied to every session.
func newMemServerWith(t *testing.T, caps imap.CapSet, wrap func(imapserver.Session) imapserver.Session) *memServer {
	t.Helper()
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	}
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("alice", "alice-secret")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess := mem.NewSession()
			if wrap != nil {
				sess = wrap(sess)
			}
			return sess, nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       tLogger{t},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &memServer{imapUser: imapUser{addr: ln.Addr().String(), user: "alice", pass: "alice-secret"}, srv: srv}
}

// memPoller makes a Poller on s with fast timings.
func memPoller(t *testing.T, s *memServer, st store.KV, h Handler, edit func(*Options)) *Poller {
	t.Helper()
	opts := Options{
		Mailboxes: []Mailbox{{
			Name: "mem", Addr: s.addr, TLS: TLSNone, Username: s.user, Password: s.pass,
			Processed: "Processed", Interval: 200 * time.Millisecond,
		}},
		Handler:    h,
		State:      st,
		Logger:     testLogger(t),
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
	}
	if edit != nil {
		edit(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return p
}

func seed(t *testing.T, u imapUser, prefix string, n int) []string {
	t.Helper()
	want := msgIDs(prefix, n)
	for _, id := range want {
		u.appendMsg(t, "INBOX", testMessage(bare(id)))
	}
	return want
}

func TestNewValidates(t *testing.T) {
	_, err := New(Options{Mailboxes: []Mailbox{{Addr: "nohost", TLS: "ssl"}, {Name: "x", Addr: "h:1"}, {Name: "x", Addr: "h:1"}}})
	if err == nil {
		t.Fatal("New(bad options) = nil error")
	}
	for _, want := range []string{"no Handler", "no State", "addr", `TLS "ssl"`, "duplicate name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New(bad options) = %v, want it to mention %q", err, want)
		}
	}
}

func TestMemHandOverOnceAndMove(t *testing.T) {
	s := newMemServer(t, nil)
	want := seed(t, s.imapUser, "m", 3)
	rec := newRecorder()
	stop := runPoller(t, memPoller(t, s, openStore(t, t.TempDir()), rec.handle, nil))
	waitFor(t, 5*time.Second, "3 messages moved", func() bool {
		return len(s.list(t, "INBOX")) == 0 && len(s.list(t, "Processed")) == 3
	})
	// A few more polls must not hand anything over again.
	time.Sleep(500 * time.Millisecond)
	stop()
	checkOnce(t, rec, want)
	if got := ids(s.list(t, "Processed")); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Processed = %v, want %v", got, want)
	}
}

func TestMemIdlePicksUpAppend(t *testing.T) {
	s := newMemServer(t, nil)
	rec := newRecorder()
	p := memPoller(t, s, openStore(t, t.TempDir()), rec.handle, func(o *Options) {
		o.Mailboxes[0].Interval = time.Minute // only IDLE can be quick
	})
	runPoller(t, p)
	time.Sleep(300 * time.Millisecond) // let it log in and IDLE
	start := time.Now()
	want := seed(t, s.imapUser, "idle", 1)
	waitFor(t, 3*time.Second, "IDLE hand-over", func() bool { return rec.total() == 1 })
	t.Logf("handed over %v after APPEND", time.Since(start))
	checkOnce(t, rec, want)
}

func TestMemHandlerErrorRetries(t *testing.T) {
	s := newMemServer(t, nil)
	want := seed(t, s.imapUser, "err", 2)
	rec := newRecorder()
	var failing sync.WaitGroup
	failing.Add(1)
	rec.fail = func(id string, n int) error {
		if id == want[0] && n <= 2 {
			if n == 2 {
				failing.Done()
			}
			return errors.New("queue unavailable")
		}
		return nil
	}
	p := memPoller(t, s, openStore(t, t.TempDir()), rec.handle, func(o *Options) {
		o.Mailboxes[0].Interval = 300 * time.Millisecond
	})
	runPoller(t, p)
	failing.Wait()
	// Right after the second failure: still in INBOX, unseen, and the
	// later message was not handed over ahead of it.
	inbox := s.list(t, "INBOX")
	if len(inbox) != 2 {
		t.Fatalf("INBOX after handler error = %v, want 2 messages", inbox)
	}
	for _, m := range inbox {
		if m.has(imap.FlagSeen) || m.has(imap.FlagDeleted) {
			t.Errorf("message %s flags %v after handler error, want neither \\Seen nor \\Deleted", m.MessageID, m.Flags)
		}
	}
	waitFor(t, 5*time.Second, "retry", func() bool { return len(s.list(t, "Processed")) == 2 })
	checkOnce(t, rec, want)
	rec.mu.Lock()
	order := slices.Clone(rec.order)
	rec.mu.Unlock()
	if order[0] != want[0] {
		t.Errorf("hand-over order %v, want %s first", order, want[0])
	}
}

// TestMemCrashBeforeMove simulates the relay dying after the handler
// queued the reply and before the message was moved.
func TestMemCrashBeforeMove(t *testing.T) {
	s := newMemServer(t, nil)
	want := seed(t, s.imapUser, "crash", 2)
	dir := t.TempDir()
	rec := newRecorder()

	st1, err := store.OpenBolt(dir, store.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	p1 := memPoller(t, s, st1, rec.handle, nil)
	ctx, cancel := context.WithCancel(context.Background())
	p1.beforeMove = func(*Mailbox, imap.UID) error {
		cancel() // the "process" dies here
		return errors.New("killed before move")
	}
	if err := p1.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run() = %v, want context.Canceled", err)
	}
	st1.Close()
	if rec.total() != 1 {
		t.Fatalf("first run handed over %d messages, want 1", rec.total())
	}
	if got := len(s.list(t, "INBOX")); got != 2 {
		t.Fatalf("INBOX after crash has %d messages, want 2 (nothing moved)", got)
	}

	p2 := memPoller(t, s, openStore(t, dir), rec.handle, nil)
	runPoller(t, p2)
	waitFor(t, 5*time.Second, "both moved", func() bool {
		return len(s.list(t, "INBOX")) == 0 && len(s.list(t, "Processed")) == 2
	})
	checkOnce(t, rec, want)
}

// TestMemDroppedConnection drops the connection right after a hand-over,
// before the move; the poller reconnects and moves without handing over again.
func TestMemDroppedConnection(t *testing.T) {
	s := newMemServer(t, nil)
	want := seed(t, s.imapUser, "drop", 4)
	var mu sync.Mutex
	var conns []net.Conn
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
		return c, err
	}
	rec := newRecorder()
	rec.after = func(id string, n int) {
		if n == 2 || n == 3 {
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		}
	}
	p := memPoller(t, s, openStore(t, t.TempDir()), rec.handle, func(o *Options) { o.Dial = dial })
	runPoller(t, p)
	waitFor(t, 5*time.Second, "all moved", func() bool {
		return len(s.list(t, "INBOX")) == 0 && len(s.list(t, "Processed")) == 4
	})
	checkOnce(t, rec, want)
	mu.Lock()
	n := len(conns)
	mu.Unlock()
	if n < 3 {
		t.Errorf("poller dialled %d times, want at least 3 (two drops)", n)
	}
}

// TestMemNoMoveNoUIDPlus: without MOVE and UIDPLUS the poller copies and
// flags its own message but expunges nothing, so another client's \Deleted
// message survives.
func TestMemNoMoveNoUIDPlus(t *testing.T) {
	s := newMemServer(t, imap.CapSet{imap.CapIMAP4rev1: {}})
	s.appendMsg(t, "INBOX", testMessage("others"), imap.FlagDeleted)
	want := seed(t, s.imapUser, "nomove", 2)
	dir := t.TempDir()
	rec := newRecorder()
	st := openStore(t, dir)
	stop := runPoller(t, memPoller(t, s, st, rec.handle, nil))
	waitFor(t, 5*time.Second, "copied", func() bool { return len(s.list(t, "Processed")) == 2 })
	time.Sleep(500 * time.Millisecond)
	stop()
	checkOnce(t, rec, want)
	inbox := s.list(t, "INBOX")
	if len(inbox) != 3 {
		t.Fatalf("INBOX = %v, want all 3 messages still there (no EXPUNGE)", inbox)
	}
	for _, m := range inbox {
		if !m.has(imap.FlagDeleted) {
			t.Errorf("INBOX message %s flags %v, want \\Deleted", m.MessageID, m.Flags)
		}
	}
	// A second poller on the same store hands nothing over again.
	stop = runPoller(t, memPoller(t, s, st, rec.handle, nil))
	time.Sleep(500 * time.Millisecond)
	stop()
	checkOnce(t, rec, want)
	if got := len(s.list(t, "Processed")); got != 2 {
		t.Errorf("Processed has %d messages, want 2 (no second COPY)", got)
	}
}

// TestMemNoMoveUIDPlus: without MOVE but with UIDPLUS, COPY + STORE + UID
// EXPUNGE removes only the poller's messages.
func TestMemNoMoveUIDPlus(t *testing.T) {
	s := newMemServer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}})
	s.appendMsg(t, "INBOX", testMessage("others"), imap.FlagDeleted)
	want := seed(t, s.imapUser, "uidplus", 2)
	rec := newRecorder()
	runPoller(t, memPoller(t, s, openStore(t, t.TempDir()), rec.handle, nil))
	waitFor(t, 5*time.Second, "moved", func() bool {
		return len(s.list(t, "Processed")) == 2 && len(s.list(t, "INBOX")) == 1
	})
	checkOnce(t, rec, want)
	if inbox := s.list(t, "INBOX"); len(inbox) != 1 || inbox[0].MessageID != "<others@test>" {
		t.Errorf("INBOX = %v, want only the other client's \\Deleted message", inbox)
	}
}

// TestMemDeleteMode: an empty Processed flags \Deleted and UID EXPUNGEs.
func TestMemDeleteMode(t *testing.T) {
	s := newMemServer(t, nil)
	want := seed(t, s.imapUser, "del", 2)
	rec := newRecorder()
	runPoller(t, memPoller(t, s, openStore(t, t.TempDir()), rec.handle, func(o *Options) { o.Mailboxes[0].Processed = "" }))
	waitFor(t, 5*time.Second, "expunged", func() bool { return rec.total() == 2 && len(s.list(t, "INBOX")) == 0 })
	checkOnce(t, rec, want)
}

func TestMemOversizeSkipped(t *testing.T) {
	s := newMemServer(t, nil)
	big := append(testMessage("big"), strings.Repeat("x", 4000)...)
	s.appendMsg(t, "INBOX", big)
	want := seed(t, s.imapUser, "small", 1)
	rec := newRecorder()
	stop := runPoller(t, memPoller(t, s, openStore(t, t.TempDir()), rec.handle, func(o *Options) { o.MaxSize = 2000 }))
	waitFor(t, 5*time.Second, "small moved", func() bool { return len(s.list(t, "Processed")) == 1 })
	time.Sleep(400 * time.Millisecond)
	stop()
	checkOnce(t, rec, want)
	if inbox := s.list(t, "INBOX"); len(inbox) != 1 || inbox[0].MessageID != "<big@test>" || inbox[0].has(imap.FlagSeen) {
		t.Errorf("INBOX = %v, want the big message, unseen", inbox)
	}
}

// TestMemUIDValidityChange: a stored UIDVALIDITY that differs restarts from
// scratch; a message pending under the old one is recognised by its hash
// and moved without a second hand-over.
func TestMemUIDValidityChange(t *testing.T) {
	s := newMemServer(t, nil)
	want := seed(t, s.imapUser, "v", 2)
	st := openStore(t, t.TempDir())
	// Pretend v0 was handed over under another UIDVALIDITY and its move
	// never happened.
	h := handedOver{UID: 77, SHA256: sha256hex(testMessage("v0")), MessageID: want[0]}
	old := mailboxState{UIDValidity: 4242, LastUID: 99, Pending: []handedOver{h}}
	if err := st.PutKV(context.Background(), store.IMAPState, "mem", old); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runPoller(t, memPoller(t, s, st, rec.handle, nil))
	waitFor(t, 5*time.Second, "both moved", func() bool { return len(s.list(t, "Processed")) == 2 })
	checkOnce(t, rec, want[1:])
	var got mailboxState
	waitFor(t, 2*time.Second, "stale cleared", func() bool {
		if err := st.GetKV(context.Background(), store.IMAPState, "mem", &got); err != nil {
			t.Fatal(err)
		}
		return len(got.Stale) == 0 && len(got.Pending) == 0
	})
	if got.UIDValidity == 4242 || got.LastUID == 0 {
		t.Errorf("state = %+v, want the new UIDVALIDITY and a LastUID", got)
	}
}

// TestMemImplicitTLS: Mailbox.TLS "tls" against a TLS listener, trusted
// through TLSConfig.
func TestMemImplicitTLS(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)

	s := newMemServer(t, nil) // plaintext, for seeding and checks
	want := seed(t, s.imapUser, "tls", 1)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	go s.srv.Serve(ln)
	rec := newRecorder()
	runPoller(t, memPoller(t, s, openStore(t, t.TempDir()), rec.handle, func(o *Options) {
		o.Mailboxes[0].Addr = ln.Addr().String()
		o.Mailboxes[0].TLS = TLSImplicit
		o.Mailboxes[0].TLSConfig = &tls.Config{RootCAs: pool}
	}))
	waitFor(t, 5*time.Second, "moved over TLS", func() bool { return len(s.list(t, "Processed")) == 1 })
	checkOnce(t, rec, want)
}

// TestMemLoginFallback: without AUTH=PLAIN the poller uses LOGIN.
func TestMemLoginFallback(t *testing.T) {
	var logins atomic.Int32
	s := newMemServerWith(t, nil, func(sess imapserver.Session) imapserver.Session {
		return loginOnly{SessionIMAP4rev2: sess.(imapserver.SessionIMAP4rev2), logins: &logins}
	})
	want := seed(t, s.imapUser, "login", 1)
	rec := newRecorder()
	var wire lockedBuffer
	runPoller(t, memPoller(t, s, openStore(t, t.TempDir()), rec.handle, func(o *Options) { o.DebugWriter = &wire }))
	waitFor(t, 5*time.Second, "moved", func() bool { return len(s.list(t, "Processed")) == 1 })
	checkOnce(t, rec, want)
	tr := wire.String()
	if !strings.Contains(tr, " LOGIN ") || strings.Contains(tr, "AUTHENTICATE") {
		t.Errorf("poller transcript has no LOGIN or has AUTHENTICATE:\n%s", tr)
	}
}

// lockedBuffer is a strings.Builder safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type tLogger struct{ t *testing.T }

func (l tLogger) Printf(format string, args ...any) { l.t.Logf("imapserver: "+format, args...) }
