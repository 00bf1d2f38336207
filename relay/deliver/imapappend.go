package deliver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// IMAPAppender delivers email for the domains an ISP hosts straight into
// the recipient's mailbox with IMAP APPEND, instead of over SMTP: the
// mode for an operator that runs the sender's mail server too (Dovecot's
// master users, "alice@example.net*mmsrelay", are the usual way in).
type IMAPAppender struct {
	Addr      string // host:port of the IMAP server
	TLS       string // "tls" (default), "starttls" or "none"
	TLSConfig *tls.Config
	// Login is the user name template: %a is the recipient address, %l
	// its local part, %d its domain. Default "%a".
	Login    string
	Password string
	Folder   string   // default INBOX
	Domains  []string // recipient domains delivered this way
	Timeout  time.Duration
	// Dial opens the TCP connection; nil uses net.Dialer. A test seam.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Serves reports whether rcpt is at one of a's domains.
func (a *IMAPAppender) Serves(rcpt string) bool {
	_, d, ok := strings.Cut(rcpt, "@")
	if !ok {
		return false
	}
	for _, x := range a.Domains {
		if strings.EqualFold(x, d) {
			return true
		}
	}
	return false
}

// Append puts msg into rcpt's mailbox.
func (a *IMAPAppender) Append(ctx context.Context, rcpt string, msg []byte) Result {
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	local, domain, _ := strings.Cut(rcpt, "@")
	login := a.Login
	if login == "" {
		login = "%a"
	}
	login = strings.NewReplacer("%a", rcpt, "%l", local, "%d", domain).Replace(login)
	dial := a.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", a.Addr)
	if err != nil {
		return Result{Recipient: rcpt, Outcome: Retry, Reason: "connecting to the IMAP server " + a.Addr + ": " + err.Error()}
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	host, _, _ := net.SplitHostPort(a.Addr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if a.TLSConfig != nil {
		cfg = a.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
	}
	opts := &imapclient.Options{TLSConfig: cfg}
	var c *imapclient.Client
	switch a.TLS {
	case "none":
		c = imapclient.New(conn, opts)
	case "starttls":
		if c, err = imapclient.NewStartTLS(conn, opts); err != nil {
			conn.Close()
			return imapFailed(rcpt, Retry, "IMAP STARTTLS: "+err.Error(), err)
		}
	default:
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return Result{Recipient: rcpt, Outcome: Retry, Reason: "IMAP TLS: " + err.Error()}
		}
		c = imapclient.New(tc, opts)
	}
	defer c.Close()
	if err := c.Login(login, a.Password).Wait(); err != nil {
		return imapFailed(rcpt, Retry, "IMAP login as "+login+": "+err.Error(), err)
	}
	folder := a.Folder
	if folder == "" {
		folder = "INBOX"
	}
	cmd := c.Append(folder, int64(len(msg)), nil)
	if _, err := cmd.Write(msg); err != nil {
		cmd.Close()
		return Result{Recipient: rcpt, Outcome: Retry, Reason: "IMAP APPEND: " + err.Error()}
	}
	if err := cmd.Close(); err != nil {
		return imapFailed(rcpt, Retry, "IMAP APPEND: "+err.Error(), err)
	}
	data, err := cmd.Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeTryCreate {
			r := imapFailed(rcpt, Bounce, fmt.Sprintf("no folder %q in the mailbox of %s", folder, rcpt), err)
			r.Enhanced = "5.2.0" // RFC 3463: the mailbox exists, but something about it refuses
			return r
		}
		return imapFailed(rcpt, Retry, "IMAP APPEND: "+err.Error(), err)
	}
	c.Logout().Wait()
	id := ""
	if data != nil && data.UID != 0 {
		id = fmt.Sprintf("%d/%d", data.UIDValidity, data.UID)
	}
	return Result{Recipient: rcpt, Outcome: Delivered, PeerID: id, Size: len(msg)}
}

// imapFailed is the result of a failed IMAP step. When the server
// answered (NO or BAD), Reply is its answer as it gave it, "NO [TRYCREATE]
// no such mailbox"; an IMAP server has no SMTP code, so Code stays 0.
func imapFailed(rcpt string, o Outcome, reason string, err error) Result {
	r := Result{Recipient: rcpt, Outcome: o, Reason: reason}
	var ie *imap.Error
	if errors.As(err, &ie) {
		r.Reply = string(ie.Type)
		if ie.Code != "" {
			r.Reply += " [" + string(ie.Code) + "]"
		}
		if ie.Text != "" {
			r.Reply += " " + ie.Text
		}
	}
	return r
}

// Split sends email for the hosted domains by IMAP APPEND and the rest
// with Mailer. It is the relay's EmailSender when IMAP delivery is on.
type Split struct {
	IMAP   *IMAPAppender
	Mailer *Mailer
}

// Send delivers msg to every recipient and returns the results in order.
func (s *Split) Send(ctx context.Context, from string, rcpts []string, msg []byte) []Result {
	out := make([]Result, len(rcpts))
	var rest []string
	var restIdx []int
	for i, r := range rcpts {
		if s.IMAP != nil && s.IMAP.Serves(r) {
			out[i] = s.IMAP.Append(ctx, r, msg)
			continue
		}
		rest = append(rest, r)
		restIdx = append(restIdx, i)
	}
	if len(rest) > 0 {
		res := s.Mailer.Send(ctx, from, rest, msg)
		for j, i := range restIdx {
			if j < len(res) {
				out[i] = res[j]
			} else {
				out[i] = Result{Recipient: rest[j], Outcome: Retry, Reason: "no result"}
			}
		}
	}
	return out
}
