package deliver

// Design note. Mailer sends the relay's own email (bounces now, replies
// later) the way an MTA does, reusing SMTPPeer for each SMTP transaction:
//
//   - Through a smarthost: one transaction with the smarthost's own TLS and
//     AUTH settings.
//   - Directly: recipients are grouped by domain; each domain's MX hosts
//     are tried in preference order, a host that fails temporarily (down,
//     any refusal at greeting or EHLO, a 4xx reply, a timeout) passing
//     the recipients still pending on to the next one. A timeout after
//     the final "." can so deliver twice, which RFC 5321 §6.1 prefers to
//     a loss. A domain with no MX is its own mail host (RFC 5321 §5.1,
//     the implicit MX); a null MX (RFC 7505) is a permanent failure.
//   - Opportunistic STARTTLS (RFC 3207) happens in the Dial that Mailer
//     gives each per-host SMTPPeer: it reads the greeting, sends EHLO,
//     and when the host offers STARTTLS upgrades the connection before
//     SMTPPeer's client ever sees it; the client then gets the greeting
//     replayed and says EHLO again, over TLS. go-smtp's client cannot
//     do this itself: its STARTTLS is all or nothing and sends EHLO with
//     the name "localhost".

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MXResolver looks up a domain's mail exchangers; *net.Resolver is one.
// A test gives a fake that returns loopback hosts.
type MXResolver interface {
	LookupMX(ctx context.Context, domain string) ([]*net.MX, error)
}

// maxMXHosts is how many MX hosts of a domain one Send tries at most
// (Postfix's smtp_mx_address_limit is 5).
const maxMXHosts = 5

// Mailer sends ordinary email (not MMS): the relay's bounces and reports.
// It is safe for concurrent use when its fields are not changed.
//
// Without a smarthost it delivers to the recipients' MX hosts and uses
// STARTTLS whenever a host offers it, without verifying the host's
// certificate unless RequireTLS is set. That is what MTAs do (RFC 7435,
// opportunistic security): an MX host name comes from unauthenticated DNS,
// so a certificate check proves little, and refusing to deliver to the
// many hosts with self-signed certificates would lose mail while plain
// text remained possible to an active attacker anyway. The encryption
// still defeats passive eavesdropping.
type Mailer struct {
	// Smarthost, when set, takes all mail in one transaction, with its own
	// TLS, AUTH and limits; the fields below then do not apply. nil:
	// deliver directly to each recipient domain's MX hosts.
	Smarthost *SMTPPeer
	// Resolver looks up MX records; nil: net.DefaultResolver. The A and
	// AAAA records of a host are looked up by Dial.
	Resolver MXResolver
	// HeloName is our host name in EHLO (default "localhost"; MX hosts
	// may refuse that, so set it).
	HeloName string
	// Port is the SMTP port of MX hosts (default "25"). A test seam.
	Port string
	// RequireTLS makes delivery to an MX host fail (temporarily) unless
	// it offers STARTTLS with a certificate valid for its MX host name.
	RequireTLS bool
	// TLSConfig overrides the client TLS settings of MX delivery, e.g. the
	// RootCAs that RequireTLS checks against; ServerName is set per host.
	TLSConfig *tls.Config
	// Timeout bounds each attempt at one MX host (default 2 minutes).
	Timeout time.Duration
	// Dial opens TCP connections to MX hosts; nil uses net.Dialer. A test
	// seam.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Send delivers msg from the reverse path from ("" is the null sender, for
// bounces) to rcpts and returns one result per recipient, in order. A
// result is Delivered, Retry or Bounce (never TooLarge: an email
// cannot be adapted, so a size refusal is permanent). Reasons name the
// host that answered. msg is not retained after Send returns.
func (m *Mailer) Send(ctx context.Context, from string, rcpts []string, msg []byte) []Result {
	out := make([]Result, len(rcpts))
	for i, a := range rcpts {
		out[i] = Result{Recipient: a, Outcome: Retry, Reason: "not tried"}
	}
	if len(rcpts) == 0 {
		return out
	}
	if m.Smarthost != nil {
		res := m.Smarthost.send(ctx, from, rcpts, msg)
		for i := range out {
			if i < len(res.rcpt) {
				out[i] = final(res.rcpt[i], rcpts[i], "smarthost "+m.Smarthost.Addr)
			}
		}
		return out
	}

	// Group by domain, in the order the domains first appear.
	var domains []string
	byDomain := map[string][]int{}
	for i, a := range rcpts {
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 {
			out[i] = Result{Recipient: a, Outcome: Bounce, Code: 501, Enhanced: "5.1.3",
				Reason: fmt.Sprintf("%q is not an email address", a)}
			continue
		}
		d := strings.ToLower(strings.TrimSuffix(a[at+1:], "."))
		if _, ok := byDomain[d]; !ok {
			domains = append(domains, d)
		}
		byDomain[d] = append(byDomain[d], i)
	}
	for _, d := range domains {
		m.sendDomain(ctx, d, from, rcpts, byDomain[d], msg, out)
	}
	return out
}

// mxHost is one host to try for a domain.
type mxHost struct {
	name     string // host name (no trailing dot) or IP address
	implicit bool   // the domain itself, for want of MX records
	literal  bool   // an address literal: no DNS at all
}

// sendDomain delivers to the recipients idx of rcpts, all at domain,
// writing their results into out.
func (m *Mailer) sendDomain(ctx context.Context, domain, from string, rcpts []string, idx []int, msg []byte, out []Result) {
	set := func(r Result) {
		for _, i := range idx {
			out[i] = r
			out[i].Recipient = rcpts[i]
		}
	}
	hosts, fail := m.lookup(ctx, domain)
	if fail != nil {
		set(*fail)
		return
	}
	pending := idx
	for n, h := range hosts {
		if err := ctx.Err(); err != nil {
			for _, i := range pending {
				out[i].Reason = fmt.Sprintf("%s (stopped before trying %s: %v)", out[i].Reason, h.name, err)
			}
			return
		}
		var a attempt
		p := &SMTPPeer{
			Addr:     net.JoinHostPort(h.name, m.port()),
			TLS:      "none", // STARTTLS is done by the Dial below
			HeloName: m.helo(),
			Timeout:  m.Timeout,
			Dial:     m.dialMX(h.name, &a),
		}
		addrs := make([]string, len(pending))
		for j, i := range pending {
			addrs[j] = rcpts[i]
		}
		res := p.send(ctx, from, addrs, msg)

		var dnsErr *net.DNSError
		if h.implicit && errors.As(a.dialErr, &dnsErr) && dnsErr.IsNotFound {
			// No MX, and no address either: the domain takes no mail.
			set(Result{Outcome: Bounce, Code: 550, Enhanced: "5.1.2",
				Reason: fmt.Sprintf("domain %s has no mail server (no MX, A or AAAA record)", domain)})
			return
		}
		var next []int
		for j, i := range pending {
			r := Result{Outcome: Retry, Reason: "no result"}
			if j < len(res.rcpt) {
				r = res.rcpt[j]
			}
			what := "MX " + h.name
			switch {
			case h.implicit:
				what = "host " + h.name + " (no MX)"
			case h.literal:
				what = "host " + h.name
			}
			if a.tls {
				what += " over TLS"
			}
			out[i] = final(r, rcpts[i], what)
			if out[i].Outcome == Retry {
				next = append(next, i)
			}
		}
		pending = next
		if len(pending) == 0 {
			return
		}
		if n == len(hosts)-1 && len(hosts) > 1 {
			for _, i := range pending {
				out[i].Reason = fmt.Sprintf("all %d mail servers of %s failed; the last: %s", len(hosts), domain, out[i].Reason)
			}
		}
	}
}

// final makes a transaction's result the one Send returns.
func final(r Result, rcpt, what string) Result {
	r.Recipient = rcpt
	if r.Outcome == TooLarge {
		r.Outcome = Bounce
	}
	if r.Outcome == Delivered && r.Reason == "" {
		r.Reason = "delivered to " + what
	} else {
		r.Reason = what + ": " + r.Reason
	}
	return r
}

// lookup returns the hosts to try for domain in order, or the result for
// all its recipients when there is none to try.
func (m *Mailer) lookup(ctx context.Context, domain string) ([]mxHost, *Result) {
	// An address literal: [192.0.2.1] or [IPv6:2001:db8::1].
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		lit := domain[1 : len(domain)-1]
		lit = strings.TrimPrefix(strings.TrimPrefix(lit, "ipv6:"), "IPv6:")
		if net.ParseIP(lit) == nil {
			return nil, &Result{Outcome: Bounce, Code: 501, Enhanced: "5.1.3", Reason: fmt.Sprintf("%s is not an address literal", domain)}
		}
		return []mxHost{{name: lit, literal: true}}, nil
	}
	name := domain
	if !isASCII(name) {
		a, err := idna.Lookup.ToASCII(name)
		if err != nil {
			return nil, &Result{Outcome: Bounce, Code: 501, Enhanced: "5.1.3",
				Reason: fmt.Sprintf("domain %q is not a valid name: %v", domain, err)}
		}
		name = a
	}
	var res MXResolver = net.DefaultResolver
	if m.Resolver != nil {
		res = m.Resolver
	}
	mxs, err := res.LookupMX(ctx, name)
	if err != nil && len(mxs) == 0 {
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			return nil, &Result{Outcome: Retry, Reason: fmt.Sprintf("looking up the MX of %s: %v", domain, err)}
		}
		// No MX records (or no such domain, which Dial will find).
	}
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
	var hosts []mxHost
	seen := map[string]bool{}
	null := false
	for _, mx := range mxs {
		if mx == nil {
			continue
		}
		h := strings.ToLower(strings.TrimSuffix(mx.Host, "."))
		if h == "" {
			null = true // RFC 7505: "." is the null MX
			continue
		}
		if !seen[h] && len(hosts) < maxMXHosts {
			seen[h] = true
			hosts = append(hosts, mxHost{name: h})
		}
	}
	if len(hosts) == 0 {
		if null {
			return nil, &Result{Outcome: Bounce, Code: 556, Enhanced: "5.1.10",
				Reason: fmt.Sprintf("domain %s does not accept mail (null MX, RFC 7505): 556 5.1.10", domain)}
		}
		hosts = []mxHost{{name: name, implicit: true}}
	}
	return hosts, nil
}

func (m *Mailer) port() string {
	if m.Port == "" {
		return "25"
	}
	return m.Port
}

func (m *Mailer) helo() string {
	if m.HeloName == "" {
		return "localhost"
	}
	return m.HeloName
}

// attempt is what the Dial of one MX attempt saw.
type attempt struct {
	dialErr error // the error of opening the connection, if any
	tls     bool  // STARTTLS succeeded
}

// tlsError is a failed TLS handshake after STARTTLS.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// dialMX returns the Dial for an SMTPPeer to MX host: it connects, does
// STARTTLS when offered (falling back to a new plain connection when the
// handshake fails, unless RequireTLS), and records what happened in a.
func (m *Mailer) dialMX(host string, a *attempt) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := m.negotiate(ctx, network, addr, host, true, a)
		var te *tlsError
		if err != nil && !m.RequireTLS && errors.As(err, &te) {
			conn, err = m.negotiate(ctx, network, addr, host, false, a)
		}
		if err == nil {
			// go-smtp's client resets the deadline SMTPPeer sets at each
			// command; closing the connection when ctx ends (at the
			// attempt's timeout, or when SMTPPeer is done with it) holds
			// every attempt to Timeout.
			context.AfterFunc(ctx, func() { conn.Close() })
		}
		return conn, err
	}
}

// negotiate connects to addr and, when tryTLS, says EHLO and upgrades
// with STARTTLS if host offers it. The returned connection replays the
// greeting, so an SMTP client can start on it as on a new connection.
func (m *Mailer) negotiate(ctx context.Context, network, addr, host string, tryTLS bool, a *attempt) (net.Conn, error) {
	dial := m.Dial
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	raw, err := dial(ctx, network, addr)
	a.dialErr = err
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			raw.Close()
		}
	}()
	if dl, has := ctx.Deadline(); has {
		raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	br := bufio.NewReader(raw)
	tp := textproto.NewReader(br)
	_, greeting, err := tp.ReadResponse(220)
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	greeting, _, _ = strings.Cut(greeting, "\n")
	replay := "220 " + greeting + "\r\n"
	plain := func() (net.Conn, error) {
		if m.RequireTLS {
			return nil, fmt.Errorf("no STARTTLS offered, and TLS is required")
		}
		raw.SetDeadline(time.Time{})
		ok = true
		return &replayConn{Conn: raw, r: io.MultiReader(strings.NewReader(replay), br)}, nil
	}
	if !tryTLS {
		return plain()
	}
	if _, err := fmt.Fprintf(raw, "EHLO %s\r\n", m.helo()); err != nil {
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	_, ext, err := tp.ReadResponse(250)
	if err != nil {
		var pe *textproto.Error
		if errors.As(err, &pe) {
			return plain() // the client will try EHLO, then HELO, again
		}
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	starttls := false
	for _, l := range strings.Split(ext, "\n")[1:] {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], "STARTTLS") {
			starttls = true
		}
	}
	if !starttls {
		return plain()
	}
	if _, err := io.WriteString(raw, "STARTTLS\r\n"); err != nil {
		return nil, fmt.Errorf("STARTTLS: %w", err)
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		var pe *textproto.Error
		if errors.As(err, &pe) {
			if m.RequireTLS {
				return nil, fmt.Errorf("STARTTLS refused (TLS is required): %w", err)
			}
			return plain()
		}
		return nil, fmt.Errorf("STARTTLS: %w", err)
	}
	if br.Buffered() > 0 {
		// Plain text sent after "220" would be taken as said under TLS
		// (the STARTTLS command injection of CVE-2011-0411).
		return nil, fmt.Errorf("STARTTLS: the server sent data before the TLS handshake")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.TLSConfig != nil {
		cfg = m.TLSConfig.Clone()
	}
	cfg.ServerName = host
	if !m.RequireTLS {
		// Opportunistic TLS: see the Mailer doc comment.
		cfg.InsecureSkipVerify = true //nolint:gosec // deliberate, as MTAs do
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, &tlsError{err}
	}
	tc.SetDeadline(time.Time{})
	a.tls = true
	ok = true
	return &replayConn{Conn: tc, r: io.MultiReader(strings.NewReader(replay), tc)}, nil
}

// replayConn is a connection whose reads start with bytes already
// received or made up (the replayed greeting).
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
