package imappoll

// Tests against a real Dovecot started per test on a free loopback port,
// following shared/recipes/test-servers.md section 1: short temp dir
// (socket paths < 107 bytes), chmod 0755 so the dovecot user can traverse
// it, Maildir root owned by dovecot (mail uid must not be 0), passwd-file
// users, ssl = no unless a cert is given, own base_dir and state_dir, stop
// by SIGTERM and wait up to 10 s. They need root and dovecot-imapd; without
// them they skip, or fail when MMSRELAY_REQUIRE_TOOLS=1.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mmsrelay/mmsrelay/internal/dovecottest"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// dovecot is a throwaway Dovecot instance (internal/dovecottest) with the
// certificate it was started with, for the clients to trust.
type dovecot struct {
	*dovecottest.Server
	cert []byte // PEM, when started with TLS
}

// startDovecot starts Dovecot with users (password "<name>-secret");
// withTLS adds a self-signed cert for STARTTLS.
func startDovecot(t *testing.T, withTLS bool, users ...string) *dovecot {
	t.Helper()
	d := &dovecot{}
	opts := dovecottest.Options{Users: users}
	if withTLS {
		d.cert, opts.KeyPEM = selfSigned(t)
		opts.CertPEM = d.cert
	}
	d.Server = dovecottest.Start(t, opts)
	return d
}

func (d *dovecot) user(name string) imapUser {
	return imapUser{addr: d.Addr(), user: name, pass: dovecottest.Password(name)}
}

// selfSigned returns a P-256 certificate for 127.0.0.1 and localhost and
// its key, PEM-encoded.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// dovecotPoller makes a Poller for u on d with fast timings.
func dovecotPoller(t *testing.T, u imapUser, st store.KV, h Handler, edit func(*Options)) *Poller {
	t.Helper()
	opts := Options{
		Mailboxes: []Mailbox{{
			Name: "dovecot-" + u.user, Addr: u.addr, TLS: TLSNone, Username: u.user, Password: u.pass,
			Processed: "Processed", Interval: 30 * time.Second,
		}},
		Handler:    h,
		State:      st,
		Logger:     testLogger(t),
		MinBackoff: 50 * time.Millisecond,
		MaxBackoff: 500 * time.Millisecond,
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

// TestDovecot runs the checks that share one instance, one user each.
func TestDovecot(t *testing.T) {
	d := startDovecot(t, true, "alice", "bob", "carol", "dave")

	t.Run("HandOverOnceMoveAndIdle", func(t *testing.T) {
		u := d.user("alice")
		want := seed(t, u, "dv", 3)
		rec := newRecorder()
		var wire lockedBuffer
		runPoller(t, dovecotPoller(t, u, openStore(t, t.TempDir()), rec.handle, func(o *Options) { o.DebugWriter = &wire }))
		waitFor(t, 10*time.Second, "3 moved", func() bool {
			return len(u.list(t, "INBOX")) == 0 && len(u.list(t, "Processed")) == 3
		})
		checkOnce(t, rec, want)
		if got := strings.Join(ids(u.list(t, "Processed")), ","); got != strings.Join(want, ",") {
			t.Errorf("Processed = %v, want %v", got, want)
		}
		for _, cmd := range []string{" AUTHENTICATE PLAIN", " UID FETCH 1 (UID BODY.PEEK[])", " UID MOVE 1 ", " IDLE"} {
			if !strings.Contains(wire.String(), cmd) {
				t.Errorf("poller transcript lacks %q", cmd)
			}
		}
		// Interval is 30 s: only IDLE can pick this up quickly.
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		want = append(want, seed(t, u, "dvidle", 1)...)
		waitFor(t, 3*time.Second, "IDLE hand-over", func() bool { return rec.total() == 4 })
		t.Logf("IDLE: handed over %v after APPEND", time.Since(start).Round(time.Millisecond))
		waitFor(t, 3*time.Second, "4 moved", func() bool { return len(u.list(t, "Processed")) == 4 })
		checkOnce(t, rec, want)
	})

	t.Run("HandlerErrorRetries", func(t *testing.T) {
		u := d.user("bob")
		want := seed(t, u, "dverr", 1)
		rec := newRecorder()
		failed := make(chan struct{})
		rec.fail = func(id string, n int) error {
			if n == 1 {
				close(failed)
				return errors.New("queue unavailable")
			}
			return nil
		}
		// The retry comes with the next poll, Interval (500 ms) later.
		p := dovecotPoller(t, u, openStore(t, t.TempDir()), rec.handle, func(o *Options) { o.Mailboxes[0].Interval = 500 * time.Millisecond })
		runPoller(t, p)
		<-failed
		if inbox := u.list(t, "INBOX"); len(inbox) != 1 || inbox[0].has(imap.FlagSeen) || inbox[0].has(imap.FlagDeleted) {
			t.Errorf("INBOX after handler error = %+v, want the message, unseen", inbox)
		}
		waitFor(t, 5*time.Second, "retried and moved", func() bool { return len(u.list(t, "Processed")) == 1 })
		checkOnce(t, rec, want)
	})

	t.Run("CrashBeforeMove", func(t *testing.T) {
		u := d.user("carol")
		want := seed(t, u, "dvcrash", 3)
		dir := t.TempDir()
		rec := newRecorder()
		st1, err := store.OpenBolt(dir, store.Options{MinFree: -1})
		if err != nil {
			t.Fatal(err)
		}
		p1 := dovecotPoller(t, u, st1, rec.handle, nil)
		ctx, cancel := context.WithCancel(context.Background())
		p1.beforeMove = func(*Mailbox, imap.UID) error {
			cancel()
			return errors.New("relay killed before move")
		}
		if err := p1.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run() = %v, want context.Canceled", err)
		}
		st1.Close()
		if rec.total() != 1 || len(u.list(t, "INBOX")) != 3 {
			t.Fatalf("after the crash: %d handed over, INBOX %v; want 1 and all 3 still there", rec.total(), u.list(t, "INBOX"))
		}
		runPoller(t, dovecotPoller(t, u, openStore(t, dir), rec.handle, nil))
		waitFor(t, 10*time.Second, "all moved", func() bool {
			return len(u.list(t, "INBOX")) == 0 && len(u.list(t, "Processed")) == 3
		})
		checkOnce(t, rec, want)
	})

	t.Run("StartTLS", func(t *testing.T) {
		u := d.user("dave")
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(d.cert) {
			t.Fatal("bad test cert")
		}
		// Untrusted: the handshake must fail.
		if c, err := imapclient.DialStartTLS(u.addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: x509.NewCertPool()}}); err == nil {
			c.Close()
			t.Fatal("DialStartTLS with an untrusted self-signed cert succeeded, want an error")
		}
		want := seed(t, u, "dvtls", 2)
		rec := newRecorder()
		var sawTLS atomic.Bool
		p := dovecotPoller(t, u, openStore(t, t.TempDir()), rec.handle, func(o *Options) {
			o.Mailboxes[0].TLS = TLSStartTLS
			o.Mailboxes[0].TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				return &sniffConn{Conn: c, onWrite: func(b []byte) {
					if strings.Contains(string(b), "STARTTLS") {
						sawTLS.Store(true)
					}
				}}, err
			}
		})
		runPoller(t, p)
		waitFor(t, 10*time.Second, "moved over STARTTLS", func() bool { return len(u.list(t, "Processed")) == 2 })
		checkOnce(t, rec, want)
		if !sawTLS.Load() {
			t.Error("the poller never sent STARTTLS")
		}
	})
}

// sniffConn reports what is written in clear (before TLS wraps it).
type sniffConn struct {
	net.Conn
	onWrite func([]byte)
}

func (c *sniffConn) Write(b []byte) (int, error) {
	c.onWrite(b)
	return c.Conn.Write(b)
}

// readCounter counts the bytes read from a connection.
type readCounter struct {
	net.Conn
	onRead func(n int)
}

func (c *readCounter) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.onRead(n)
	return n, err
}

// TestDovecotRestartMidRun kills Dovecot (SIGKILL, whole process group)
// three times while the poller works through several messages and starts it
// again on the same directories: in the middle of a BODY.PEEK[] literal,
// between a hand-over and its move, and just after a hand-over (landing in
// whatever comes next). Nothing is lost or handed over twice.
func TestDovecotRestartMidRun(t *testing.T) {
	d := startDovecot(t, false, "erin")
	u := d.user("erin")
	const n, pad = 8, 200 << 10 // 200 KiB bodies: a fetch takes many reads
	var want []string
	for _, id := range msgIDs("rs", n) {
		want = append(want, id)
		u.appendMsg(t, "INBOX", append(testMessage(bare(id)), strings.Repeat("0123456789abcdef\r\n", pad/18)...))
	}
	var restarting sync.WaitGroup
	var restarts sync.WaitGroup
	restarts.Add(3)
	restart := func(delay time.Duration) {
		restarting.Go(func() {
			time.Sleep(delay)
			if err := d.TryStart(); err != nil {
				t.Error(err)
			}
			restarts.Done()
		})
	}
	var mu sync.Mutex
	var read int64
	midFetch := false
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &readCounter{Conn: c, onRead: func(k int) {
			mu.Lock()
			read += int64(k)
			fire := !midFetch && read > 2*pad+pad/2 // inside message 3's literal
			if fire {
				midFetch = true
			}
			total := read
			mu.Unlock()
			if fire {
				t.Logf("killing dovecot mid-fetch after %d bytes", total)
				d.Kill()
				restart(300 * time.Millisecond)
			}
		}}, nil
	}
	rec := newRecorder()
	rec.after = func(id string, total int) {
		switch total {
		case 5:
			// Before the handler returns, so the move meets a dead server.
			t.Logf("killing dovecot between hand-over and move of %s", id)
			d.Kill()
			restart(300 * time.Millisecond)
		case 7:
			restarting.Go(func() {
				time.Sleep(2 * time.Millisecond)
				t.Logf("killing dovecot just after the hand-over of %s", id)
				d.Kill()
				restart(300 * time.Millisecond)
			})
		}
	}
	runPoller(t, dovecotPoller(t, u, openStore(t, t.TempDir()), rec.handle, func(o *Options) { o.Dial = dial }))
	restartsDone := make(chan struct{})
	go func() { restarts.Wait(); close(restartsDone) }()
	select {
	case <-restartsDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the three restarts did not happen in 30 s")
	}
	restarting.Wait()
	waitFor(t, 15*time.Second, "all moved", func() bool {
		return len(u.list(t, "INBOX")) == 0 && rec.total() >= n
	})
	checkOnce(t, rec, want)
	processed := u.list(t, "Processed")
	seen := make(map[string]int)
	for _, m := range processed {
		seen[m.MessageID]++
	}
	for _, id := range want {
		if seen[id] == 0 {
			t.Errorf("message %s not in Processed", id)
		}
	}
	if len(processed) != len(want) {
		// A MOVE cut by SIGKILL may leave a copy in Processed; that is
		// Dovecot's doing and not a hand-over, but report it.
		t.Logf("Processed has %d messages for %d distinct: %v", len(processed), len(want), seen)
	}
}
