package deliver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/config"
)

// SMTPPeer is a peer that takes mail over SMTP: an MMSC's MM4 or MM3
// interface. Its limits hold across all deliveries made through it.
type SMTPPeer struct {
	Addr     string // host:port
	TLS      string // "none", "starttls" (required), or "tls" (implicit)
	Username string // AUTH PLAIN when set (LOGIN when the peer offers only that)
	Password string
	HeloName string // our host name in EHLO
	// TLSConfig overrides the client TLS settings (ServerName defaults to
	// the host of Addr).
	TLSConfig *tls.Config
	// Timeout bounds each delivery (default 2 minutes).
	Timeout time.Duration
	// MaxRate caps messages per second (0: no cap); MaxConnections caps
	// concurrent sessions (0: 4). Aggregators answer 421 beyond their caps.
	MaxRate        float64
	MaxConnections int
	// Dial opens the TCP connection; nil uses net.Dialer. A test seam.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	once sync.Once
	sem  chan struct{}
	mu   sync.Mutex
	next time.Time // rate limit: earliest start of the next message
}

// routePeer is the SMTP peer of a route that talks SMTP (mm4, mm3): its
// host, TLS, AUTH and limits from rc, our host name from env.
func routePeer(rc config.Route, env Env) *SMTPPeer {
	return &SMTPPeer{Addr: rc.Host, TLS: rc.TLS, Username: rc.Username, Password: rc.Password,
		HeloName: env.Hostname, MaxRate: rc.MaxRate, MaxConnections: rc.MaxConnections}
}

// sendResult is what one SMTP transaction gave.
type sendResult struct {
	rcpt   []Result // per recipient, Recipient set to the RCPT address
	peerID string
}

func (p *SMTPPeer) init() {
	p.once.Do(func() {
		n := p.MaxConnections
		if n <= 0 {
			n = 4
		}
		p.sem = make(chan struct{}, n)
	})
}

// wait enforces MaxRate.
func (p *SMTPPeer) wait(ctx context.Context) error {
	if p.MaxRate <= 0 {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	start := p.next
	if start.Before(now) {
		start = now
	}
	p.next = start.Add(time.Duration(float64(time.Second) / p.MaxRate))
	p.mu.Unlock()
	if d := time.Until(start); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// send runs one SMTP transaction: MAIL FROM, a RCPT TO per address, DATA.
// Every recipient gets a result.
func (p *SMTPPeer) send(ctx context.Context, from string, rcpts []string, body []byte) sendResult {
	p.init()
	fail := func(r Result) sendResult {
		out := make([]Result, len(rcpts))
		for i, a := range rcpts {
			out[i] = r
			out[i].Recipient = a
		}
		return sendResult{rcpt: out}
	}
	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	case <-ctx.Done():
		return fail(Result{Outcome: Retry, Reason: "gave up waiting for a connection slot: " + ctx.Err().Error()})
	}
	if err := p.wait(ctx); err != nil {
		return fail(Result{Outcome: Retry, Reason: err.Error()})
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	c, err := p.connect(ctx)
	if err != nil {
		return fail(classify(err, "connecting to "+p.Addr))
	}
	defer c.Close()

	if err := c.Mail(from, &smtp.MailOptions{Size: int64(len(body))}); err != nil {
		return fail(classify(err, "MAIL FROM"))
	}
	out := make([]Result, len(rcpts))
	accepted := 0
	for i, a := range rcpts {
		out[i].Recipient = a
		if err := c.Rcpt(a, nil); err != nil {
			out[i] = classify(err, "RCPT TO:<"+a+">")
			out[i].Recipient = a
			continue
		}
		out[i].Outcome = -1 // accepted, pending DATA
		accepted++
	}
	if accepted == 0 {
		c.Reset()
		c.Quit()
		return sendResult{rcpt: out}
	}
	w, err := c.Data()
	var resp *smtp.DataResponse
	if err == nil {
		if _, err = w.Write(body); err == nil {
			resp, err = w.CloseWithResponse()
		}
	}
	var data Result
	if err != nil {
		data = classify(err, "DATA")
	} else {
		data = Result{Outcome: Delivered, Code: 250, Size: len(body)}
	}
	res := sendResult{rcpt: out}
	if resp != nil {
		res.peerID = queueID(resp.StatusText)
		text, _, _ := strings.Cut(resp.StatusText, "\n")
		data.Reply = strings.TrimSpace("250 " + text)
		if f := strings.Fields(text); len(f) > 0 && isEnhanced(f[0]) {
			data.Enhanced = f[0]
		}
	}
	for i := range out {
		if out[i].Outcome == -1 {
			r := data
			r.Recipient = out[i].Recipient
			r.PeerID = res.peerID
			out[i] = r
		}
	}
	c.Quit()
	return res
}

var queuedAs = regexp.MustCompile(`(?i)(?:queued as|id[=: ]+)\s*<?([A-Za-z0-9._@-]+)>?`)

// queueID picks the peer's message id out of its reply to DATA.
func queueID(text string) string {
	if m := queuedAs.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	return ""
}

func (p *SMTPPeer) connect(ctx context.Context) (*smtp.Client, error) {
	dial := p.Dial
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", p.Addr)
	if err != nil {
		return nil, err
	}
	// go-smtp sets its own deadline at every command: close the
	// connection when ctx ends (send's timeout, or when send returns), so
	// Timeout bounds the whole delivery.
	context.AfterFunc(ctx, func() { conn.Close() })
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(p.Addr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if p.TLSConfig != nil {
		cfg = p.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
	}
	var c *smtp.Client
	switch p.TLS {
	case "tls":
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = smtp.NewClient(tc)
	case "starttls":
		c, err = smtp.NewClientStartTLS(conn, cfg)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	helo := p.HeloName
	if helo == "" {
		helo = "localhost"
	}
	if p.TLS != "starttls" {
		if err := c.Hello(helo); err != nil {
			c.Close()
			return nil, err
		}
	}
	if p.Username != "" {
		var a sasl.Client
		if ok, _ := c.Extension("AUTH"); ok && !c.SupportsAuth("PLAIN") && c.SupportsAuth("LOGIN") {
			a = sasl.NewLoginClient(p.Username, p.Password)
		} else {
			a = sasl.NewPlainClient("", p.Username, p.Password)
		}
		if err := c.Auth(a); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return c, nil
}

// isEnhanced reports whether s is an enhanced status code: class.subject.detail
// (RFC 3463 §2), such as "2.0.0" or "5.1.10".
func isEnhanced(s string) bool {
	f := strings.Split(s, ".")
	if len(f) != 3 || len(f[0]) != 1 || !strings.Contains("245", f[0]) {
		return false
	}
	for _, n := range f[1:] {
		if len(n) < 1 || len(n) > 3 || strings.Trim(n, "0123456789") != "" {
			return false
		}
	}
	return true
}

// classify turns an SMTP or network error into a result.
func classify(err error, what string) Result {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		r := Result{Code: se.Code, Reply: fmt.Sprintf("%d %s", se.Code, se.Message)}
		if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
			r.Enhanced = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
			r.Reply = fmt.Sprintf("%d %s %s", se.Code, r.Enhanced, se.Message)
		}
		r.Reason = fmt.Sprintf("%s: the peer answered %s", what, r.Reply)
		switch {
		case se.Code == 552 || se.EnhancedCode == (smtp.EnhancedCode{5, 3, 4}) || se.EnhancedCode == (smtp.EnhancedCode{5, 2, 3}):
			r.Outcome = TooLarge
		case se.Code >= 400 && se.Code < 500:
			r.Outcome = Retry
		default:
			r.Outcome = Bounce
		}
		return r
	}
	return Result{Outcome: Retry, Reason: what + ": " + err.Error()}
}
