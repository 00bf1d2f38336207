package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Every test here talks to servers on 127.0.0.0/8 only: the resolver is a
// fake, and loopbackDial refuses any other address.

// fakeResolver answers MX queries from a table; a domain not in it does
// not exist.
type fakeResolver struct {
	mx map[string][]*net.MX
}

func (r *fakeResolver) LookupMX(_ context.Context, domain string) ([]*net.MX, error) {
	if domain == "servfail.test" {
		return nil, &net.DNSError{Err: "server misbehaving", Name: domain, IsTemporary: true}
	}
	mxs, ok := r.mx[domain]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: domain, IsNotFound: true}
	}
	return mxs, nil
}

// loopbackDial dials loopback addresses only. Host names are looked up in
// hosts (name → loopback IP); an unknown name does not exist.
func loopbackDial(t *testing.T, hosts map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip, ok := hosts[host]; ok {
			host = ip
		}
		ip := net.ParseIP(host)
		if ip == nil {
			return nil, &net.OpError{Op: "dial", Net: network,
				Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}
		if !ip.IsLoopback() {
			t.Errorf("dial to %s: not a loopback address", addr)
			return nil, errors.New("refusing a non-loopback address in a test")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(host, port))
	}
}

// spy is a test peer that also records, per SMTP session, the EHLO name
// and whether the session ran over TLS.
type spy struct {
	*peer
	mu    sync.Mutex
	helos []string
	tls   []bool
}

func (s *spy) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	s.mu.Lock()
	s.helos = append(s.helos, c.Hostname())
	s.tls = append(s.tls, isTLS)
	s.mu.Unlock()
	return s.peer.NewSession(c)
}

// startMX runs b as an MX host on addr ("127.0.0.1:0" for any port);
// tlsCfg non-nil offers STARTTLS. It returns the address listened on, or
// "" when addr cannot be listened on.
func startMX(t *testing.T, b smtp.Backend, addr string, tlsCfg *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return ""
	}
	s := smtp.NewServer(b)
	s.Domain = "mx.test"
	s.ErrorLog = log.New(io.Discard, "", 0)
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.TLSConfig = tlsCfg
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

const bounce = "From: Mail Delivery System <MAILER-DAEMON@relay.test>\r\nTo: <alice@example.test>\r\nSubject: Undelivered MMS: hi\r\n\r\nsorry\r\n"

func checkResults(t *testing.T, got []Result, want ...Outcome) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Send gave %d results, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Outcome != want[i] {
			t.Errorf("Send result %d = %v (%s), want %v", i, got[i].Outcome, got[i].Reason, want[i])
		}
	}
}

// The MX with the lowest preference is used; the resolver's hosts are
// loopback addresses reached with the real dialer through the Port seam.
func TestMailerMXPreference(t *testing.T) {
	primary := &peer{}
	addr := startMX(t, primary, "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(addr)
	backup := &peer{}
	if startMX(t, backup, "127.0.0.2:"+port, nil) == "" {
		t.Skip("cannot listen on 127.0.0.2")
	}
	m := &Mailer{
		Resolver: &fakeResolver{mx: map[string][]*net.MX{"example.test": {
			{Host: "127.0.0.2.", Pref: 20}, {Host: "127.0.0.1.", Pref: 10},
		}}},
		Port:     port,
		HeloName: "relay.test",
	}
	res := m.Send(context.Background(), "", []string{"alice@example.test", "bob@EXAMPLE.test"}, []byte(bounce))
	checkResults(t, res, Delivered, Delivered)
	if res[1].Recipient != "bob@EXAMPLE.test" || !strings.Contains(res[0].Reason, "MX 127.0.0.1") {
		t.Errorf("results = %+v", res)
	}
	if len(primary.mails) != 1 || len(backup.mails) != 0 {
		t.Fatalf("primary got %d mails, backup %d; want 1, 0", len(primary.mails), len(backup.mails))
	}
	got := primary.mails[0]
	if got.from != "" || strings.Join(got.rcpts, ",") != "alice@example.test,bob@EXAMPLE.test" || string(got.data) != bounce {
		t.Errorf("primary got MAIL FROM:<%s> RCPT %q:\n%s", got.from, got.rcpts, got.data)
	}
}

func TestMailerFirstMXDown(t *testing.T) {
	p := &spy{peer: &peer{}}
	addr := startMX(t, p, "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(addr)
	m := &Mailer{
		Resolver: &fakeResolver{mx: map[string][]*net.MX{
			"example.test": {{Host: "mx1.example.test.", Pref: 10}, {Host: "mx2.example.test.", Pref: 20}},
			"alldown.test": {{Host: "mx1.example.test.", Pref: 10}, {Host: "gone.example.test.", Pref: 20}},
		}},
		Port:     port,
		HeloName: "relay.test",
		// mx1 is an address where nothing listens on port.
		Dial:    loopbackDial(t, map[string]string{"mx1.example.test": "127.0.0.3", "mx2.example.test": "127.0.0.1"}),
		Timeout: 5 * time.Second,
	}
	res := m.Send(context.Background(), "bounces@relay.test", []string{"alice@example.test"}, []byte(bounce))
	checkResults(t, res, Delivered)
	if !strings.Contains(res[0].Reason, "mx2.example.test") || len(p.mails) != 1 || p.helos[0] != "relay.test" {
		t.Errorf("result %+v, mails %d, EHLO %q", res[0], len(p.mails), p.helos)
	}

	// Every MX down: a temporary failure that says so.
	res = m.Send(context.Background(), "", []string{"a@alldown.test", "b@alldown.test"}, []byte(bounce))
	checkResults(t, res, Retry, Retry)
	if !strings.Contains(res[0].Reason, "all 2 mail servers of alldown.test failed") || res[1].Recipient != "b@alldown.test" {
		t.Errorf("all down: %+v", res)
	}
	// A resolver failure is temporary too.
	res = m.Send(context.Background(), "", []string{"a@servfail.test"}, []byte(bounce))
	checkResults(t, res, Retry)
}

func TestMailerNullAndImplicitMX(t *testing.T) {
	p := &peer{}
	addr := startMX(t, p, "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(addr)
	m := &Mailer{
		Resolver: &fakeResolver{mx: map[string][]*net.MX{
			"nullmx.test":  {{Host: ".", Pref: 0}},
			"nomx.test":    {},
			"example.test": {{Host: "127.0.0.1", Pref: 10}},
		}},
		Port: port,
		Dial: loopbackDial(t, map[string]string{"nomx.test": "127.0.0.1", "nxmx.test": "127.0.0.1"}),
	}
	rcpts := []string{
		"a@nullmx.test",     // null MX: permanent
		"b@nomx.test",       // no MX records: the domain's address
		"c@nxmx.test",       // MX lookup "not found", but an address: delivered
		"d@nowhere.test",    // neither MX nor address: permanent
		"not-an-address",    // permanent
		"e@example.test",    // delivered
		"f@[127.0.0.1]",     // address literal
		"g@[IPv6:bad]",      // bad literal: permanent
		"h@nullmx.test",     // null MX again
		"i@servfail.test",   // temporary
		"j@[IPv6:::1]",      // nothing listens on ::1: temporary
		"k@bücher.example",  // IDN, not found: permanent
		"l@exa mple.test",   // not a domain: does not exist
		"m@example.test",    // delivered, same transaction as e
		"n@nomx.test.",      // trailing dot: same domain as b
		"o@NOMX.TEST",       // case: same domain as b
		"p@example.test",    // delivered
		"q@nowhere.test",    // permanent
		"r@nomx.test",       // delivered
		"s@example.test",    // delivered
		"t@[127.0.0.1]",     // delivered
		"u@nullmx.test",     // permanent
		"v@nowhere.test",    // permanent
		"w@servfail.test",   // temporary
		"x@example.test",    // delivered
		"y@bücher.example",  // permanent
		"z@[IPv6:bad]",      // permanent
		"zz@not-an-address", // does not exist: permanent
	}
	res := m.Send(context.Background(), "", rcpts, []byte(bounce))
	checkResults(t, res,
		Bounce, Delivered, Delivered, Bounce, Bounce, Delivered, Delivered, Bounce, Bounce, Retry,
		Retry, Bounce, Bounce, Delivered, Delivered, Delivered, Delivered, Bounce, Delivered, Delivered,
		Delivered, Bounce, Bounce, Retry, Delivered, Bounce, Bounce, Bounce)
	if res[0].Code != 556 || !strings.Contains(res[0].Reason, "null MX") {
		t.Errorf("null MX result = %+v", res[0])
	}
	if !strings.Contains(res[1].Reason, "no MX") {
		t.Errorf("implicit MX result = %+v", res[1])
	}
	if !strings.Contains(res[3].Reason, "no mail server") {
		t.Errorf("nonexistent domain result = %+v", res[3])
	}
	for i, r := range res {
		if r.Recipient != rcpts[i] {
			t.Errorf("result %d is for %q, want %q", i, r.Recipient, rcpts[i])
		}
	}
	// One transaction per domain (example.test, nomx.test, nxmx.test, [127.0.0.1]).
	if len(p.mails) != 4 {
		t.Errorf("the MX got %d mails, want 4", len(p.mails))
	}
}

func TestMailerPerRecipient(t *testing.T) {
	p := &peer{rcptCode: map[string]int{"nobody": 550, "grey": 450}}
	addr := startMX(t, p, "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(addr)
	backup := &peer{rcptCode: map[string]int{}}
	if startMX(t, backup, "127.0.0.2:"+port, nil) == "" {
		t.Skip("cannot listen on 127.0.0.2")
	}
	m := &Mailer{
		Resolver: &fakeResolver{mx: map[string][]*net.MX{
			"example.test": {{Host: "127.0.0.1", Pref: 10}, {Host: "127.0.0.2", Pref: 20}},
			"single.test":  {{Host: "127.0.0.1", Pref: 10}},
		}},
		Port: port,
	}
	res := m.Send(context.Background(), "", []string{"alice@example.test", "nobody@example.test", "grey@example.test"}, []byte(bounce))
	checkResults(t, res, Delivered, Bounce, Delivered)
	if res[1].Code != 550 || !strings.Contains(res[1].Reason, "550 5.1.1") || !strings.Contains(res[1].Reason, "127.0.0.1") {
		t.Errorf("5xx result = %+v", res[1])
	}
	// The recipient the primary deferred went to the backup, alone.
	if len(p.mails) != 1 || strings.Join(p.mails[0].rcpts, ",") != "alice@example.test" ||
		len(backup.mails) != 1 || strings.Join(backup.mails[0].rcpts, ",") != "grey@example.test" {
		t.Errorf("primary got %+v, backup %+v", p.mails, backup.mails)
	}
	// With one MX, a 4xx stays temporary.
	res = m.Send(context.Background(), "", []string{"grey@single.test"}, []byte(bounce))
	checkResults(t, res, Retry)

	// A size refusal is permanent for email (TooLarge is for MMS).
	p.rcptCode = map[string]int{}
	p.dataCode = 552
	res = m.Send(context.Background(), "", []string{"a@single.test"}, []byte(bounce))
	checkResults(t, res, Bounce)
	p.dataCode = 554
	res = m.Send(context.Background(), "", []string{"a@single.test"}, []byte(bounce))
	checkResults(t, res, Bounce)
}

func TestMailerSTARTTLS(t *testing.T) {
	cert := selfSigned(t)
	good := &tls.Config{Certificates: []tls.Certificate{cert}}
	// Opportunistic: a self-signed certificate is good enough.
	p := &spy{peer: &peer{}}
	addr := startMX(t, p, "127.0.0.1:0", good)
	_, port, _ := net.SplitHostPort(addr)
	r := &fakeResolver{mx: map[string][]*net.MX{"example.test": {{Host: "localhost", Pref: 10}}}}
	m := &Mailer{Resolver: r, Port: port, HeloName: "relay.test", Dial: loopbackDial(t, map[string]string{"localhost": "127.0.0.1"})}
	res := m.Send(context.Background(), "", []string{"a@example.test"}, []byte(bounce))
	checkResults(t, res, Delivered)
	if !strings.Contains(res[0].Reason, "over TLS") || len(p.mails) != 1 {
		t.Errorf("result %+v, mails %d", res[0], len(p.mails))
	}
	// The session that took the mail ran over TLS, and EHLO named us.
	if n := len(p.tls); n == 0 || !p.tls[n-1] || p.helos[n-1] != "relay.test" {
		t.Errorf("sessions: TLS %v, EHLO %q", p.tls, p.helos)
	}

	// RequireTLS: the same certificate is refused unless trusted.
	m.RequireTLS = true
	res = m.Send(context.Background(), "", []string{"a@example.test"}, []byte(bounce))
	checkResults(t, res, Retry)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	m.TLSConfig = &tls.Config{RootCAs: roots}
	res = m.Send(context.Background(), "", []string{"a@example.test"}, []byte(bounce))
	checkResults(t, res, Delivered)

	// RequireTLS and a host without STARTTLS: temporary.
	plain := &peer{}
	plainAddr := startMX(t, plain, "127.0.0.1:0", nil)
	_, plainPort, _ := net.SplitHostPort(plainAddr)
	m.Port = plainPort
	res = m.Send(context.Background(), "", []string{"a@example.test"}, []byte(bounce))
	checkResults(t, res, Retry)
	if !strings.Contains(res[0].Reason, "TLS is required") || len(plain.mails) != 0 {
		t.Errorf("RequireTLS without STARTTLS: %+v", res[0])
	}
	// Without RequireTLS it goes in plain text.
	m.RequireTLS = false
	res = m.Send(context.Background(), "", []string{"a@example.test"}, []byte(bounce))
	checkResults(t, res, Delivered)
	if strings.Contains(res[0].Reason, "over TLS") {
		t.Errorf("plain delivery reported as TLS: %+v", res[0])
	}

	// A failing TLS handshake falls back to a new plain connection.
	broken := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return nil, errors.New("no certificate")
	}}
	bp := &spy{peer: &peer{}}
	brokenAddr := startMX(t, bp, "127.0.0.1:0", broken)
	_, m.Port, _ = net.SplitHostPort(brokenAddr)
	res = m.Send(context.Background(), "", []string{"a@example.test"}, []byte(bounce))
	checkResults(t, res, Delivered)
	if len(bp.mails) != 1 || strings.Contains(res[0].Reason, "over TLS") {
		t.Errorf("TLS fallback: %+v, mails %d", res[0], len(bp.mails))
	}
	m.RequireTLS = true
	res = m.Send(context.Background(), "", []string{"a@example.test"}, []byte(bounce))
	checkResults(t, res, Retry)
}

// A host that sends plain text right after "220" to STARTTLS is not
// believed (the command injection of CVE-2011-0411).
func TestMailerSTARTTLSInjection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 512)
				io.WriteString(c, "220 evil ESMTP\r\n")
				c.Read(buf) // EHLO
				io.WriteString(c, "250-evil\r\n250 STARTTLS\r\n")
				c.Read(buf) // STARTTLS
				io.WriteString(c, "220 go ahead\r\n250 injected\r\n")
				c.Read(buf)
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	m := &Mailer{
		Resolver: &fakeResolver{mx: map[string][]*net.MX{"example.test": {{Host: "127.0.0.1", Pref: 10}}}},
		Port:     port, Timeout: 5 * time.Second,
	}
	res := m.Send(context.Background(), "", []string{"a@example.test"}, []byte(bounce))
	checkResults(t, res, Retry)
	if !strings.Contains(res[0].Reason, "before the TLS handshake") {
		t.Errorf("result = %+v", res[0])
	}
}

// A host that stalls (here after EHLO, where go-smtp's own 5-minute
// command timeout would apply) is given up after Timeout, and the next
// one tried.
func TestMailerTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "220 slow ESMTP\r\n")
				buf := make([]byte, 512)
				c.Read(buf) // the first EHLO is answered, then nothing
				io.WriteString(c, "250 slow\r\n")
				for {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	p := &peer{}
	good := startMX(t, p, "127.0.0.1:0", nil)
	_, slowPort, _ := net.SplitHostPort(l.Addr().String())
	m := &Mailer{
		Resolver: &fakeResolver{mx: map[string][]*net.MX{"example.test": {
			{Host: "slow.example.test", Pref: 10}, {Host: "good.example.test", Pref: 20}}}},
		Port:    "25",
		Timeout: 300 * time.Millisecond,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			to := map[string]string{"slow.example.test:25": "127.0.0.1:" + slowPort, "good.example.test:25": good}[addr]
			if to == "" {
				return nil, errors.New("unexpected address " + addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, to)
		},
	}
	start := time.Now()
	res := m.Send(context.Background(), "", []string{"a@example.test"}, []byte(bounce))
	checkResults(t, res, Delivered)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %v with a 300ms timeout", d)
	}
	if !strings.Contains(res[0].Reason, "good.example.test") {
		t.Errorf("result = %+v", res[0])
	}
}

func TestMailerSmarthost(t *testing.T) {
	for _, mode := range []string{"none", "starttls"} {
		p := &peer{needAuth: true, rcptCode: map[string]int{"nobody": 550}}
		addr, roots := startPeer(t, p, mode)
		m := &Mailer{
			Smarthost: &SMTPPeer{Addr: addr, TLS: mode, Username: "relay", Password: "s3cret", HeloName: "relay.test",
				TLSConfig: &tls.Config{RootCAs: roots}},
			Resolver: resolverFunc(func(domain string) {
				t.Errorf("%s: smarthost delivery looked up the MX of %s", mode, domain)
			}),
		}
		res := m.Send(context.Background(), "", []string{"a@one.test", "b@two.test", "nobody@two.test"}, []byte(bounce))
		checkResults(t, res, Delivered, Delivered, Bounce)
		if len(p.mails) != 1 || p.mails[0].user != "relay" || strings.Join(p.mails[0].rcpts, ",") != "a@one.test,b@two.test" {
			t.Errorf("%s: smarthost got %+v", mode, p.mails)
		}
		if !strings.Contains(res[0].Reason, "smarthost "+addr) {
			t.Errorf("%s: reason %q", mode, res[0].Reason)
		}
		// Bad credentials: permanent for all.
		m.Smarthost = &SMTPPeer{Addr: addr, TLS: mode, Username: "relay", Password: "wrong", TLSConfig: &tls.Config{RootCAs: roots}}
		res = m.Send(context.Background(), "", []string{"a@one.test"}, []byte(bounce))
		checkResults(t, res, Bounce)
	}
	// A smarthost that is down: temporary.
	m := &Mailer{Smarthost: &SMTPPeer{Addr: deadAddr(t), Timeout: 5 * time.Second}}
	res := m.Send(context.Background(), "", []string{"a@one.test", "b@two.test"}, []byte(bounce))
	checkResults(t, res, Retry, Retry)
	if res := m.Send(context.Background(), "", nil, []byte(bounce)); len(res) != 0 {
		t.Errorf("Send to nobody = %+v", res)
	}
}

func TestMailerCanceled(t *testing.T) {
	p := &peer{}
	addr := startMX(t, p, "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(addr)
	m := &Mailer{Resolver: &fakeResolver{mx: map[string][]*net.MX{"example.test": {{Host: "127.0.0.1"}}}}, Port: port}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := m.Send(ctx, "", []string{"a@example.test"}, []byte(bounce))
	checkResults(t, res, Retry)
	if len(p.mails) != 0 {
		t.Errorf("a canceled Send delivered %d mails", len(p.mails))
	}
}

// resolverFunc is a resolver that reports each query and finds nothing.
type resolverFunc func(domain string)

func (f resolverFunc) LookupMX(_ context.Context, domain string) ([]*net.MX, error) {
	f(domain)
	return nil, &net.DNSError{Err: "no such host", Name: domain, IsNotFound: true}
}

// TestMailerResultFields checks that results carry their codes as fields:
// the peer's reply where a peer answered, our own codes where none did.
func TestMailerResultFields(t *testing.T) {
	p := &peer{rcptCode: map[string]int{"nobody": 550}}
	addr := startMX(t, p, "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(addr)
	m := &Mailer{
		Resolver: &fakeResolver{mx: map[string][]*net.MX{
			"nullmx.test":  {{Host: ".", Pref: 0}},
			"example.test": {{Host: "127.0.0.1", Pref: 10}},
		}},
		Port: port,
	}
	res := m.Send(context.Background(), "", []string{"a@nullmx.test", "not-an-address", "nobody@example.test", "alice@example.test"}, []byte(bounce))
	checkResults(t, res, Bounce, Bounce, Bounce, Delivered)
	for i, want := range []Result{
		{Code: 556, Enhanced: "5.1.10"},
		{Code: 501, Enhanced: "5.1.3"},
		{Code: 550, Enhanced: "5.1.1", Reply: "550 5.1.1 no such number"},
		{Code: 250, Enhanced: "2.0.0"},
	} {
		got := res[i]
		if got.Code != want.Code || got.Enhanced != want.Enhanced || (want.Reply != "" && got.Reply != want.Reply) {
			t.Errorf("Send result %d = code %d, enhanced %q, reply %q; want %d, %q, %q", i, got.Code, got.Enhanced, got.Reply,
				want.Code, want.Enhanced, want.Reply)
		}
	}
	if res[0].Reply != "" || res[1].Reply != "" {
		t.Errorf("no peer answered, yet Reply = %q, %q", res[0].Reply, res[1].Reply)
	}
	if !strings.HasPrefix(res[3].Reply, "250 2.0.0 ") {
		t.Errorf("delivered: Reply = %q, want the peer's 250 reply", res[3].Reply)
	}
}
