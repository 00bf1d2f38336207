package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/relay/store"
	"golang.org/x/crypto/bcrypt"
)

// SMTP replies. go-smtp turns any error that is not a *smtp.SMTPError into
// a temporary 451 at MAIL and RCPT: every refusal here is one of these.
func smtpErr(code int, e1, e2, e3 int, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{e1, e2, e3}, Message: msg}
}

var (
	errRelayDenied  = smtpErr(550, 5, 7, 1, "Relaying denied: this server takes mail only for its MMS numbers")
	errAuthRequired = smtpErr(530, 5, 7, 0, "Authentication required")
	errDiskFull     = smtpErr(452, 4, 3, 1, "Insufficient system storage, try again later")
	errStore        = smtpErr(451, 4, 3, 0, "Temporary local problem, try again later")
	errTooManyRcpts = smtpErr(452, 4, 5, 3, "Too many recipients")
	errNoMail       = smtpErr(503, 5, 5, 1, "MAIL first")
	errNoRcpt       = smtpErr(554, 5, 5, 1, "No valid recipients")
	errNotPeer      = smtpErr(550, 5, 7, 1, "MM4 traffic is taken only from configured MMSC peers")
	errBadCreds     = smtpErr(535, 5, 7, 8, "Authentication credentials invalid")
)

// backend makes sessions for one listener.
type backend struct {
	r          *Relay
	submission bool
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := &session{r: b.r, submission: b.submission, helo: c.Hostname()}
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		s.remote = ap.Addr().Unmap()
	}
	s.trusted = b.r.o().Trusted(s.remote)
	if st, ok := c.TLSConnectionState(); ok {
		s.tls = true
		for _, cert := range st.PeerCertificates {
			s.tlsNames = append(s.tlsNames, cert.DNSNames...)
			if cert.Subject.CommonName != "" {
				s.tlsNames = append(s.tlsNames, cert.Subject.CommonName)
			}
		}
	}
	s.conn = c
	b.r.metrics.Inc("mmsrelay_smtp_sessions_total")
	return s, nil
}

// session is one SMTP session. Its methods return *smtp.SMTPError values.
type session struct {
	r          *Relay
	conn       *smtp.Conn
	submission bool
	remote     netip.Addr
	trusted    bool
	tls        bool
	tlsNames   []string
	helo       string
	authUser   string

	from     string
	hasFrom  bool
	mailOpts smtp.MailOptions
	rcpts    []store.Recipient
	numbers  int  // MMS recipients
	replies  int  // reply addresses
	mm4      bool // addressed to our MM4 system address
	special  int  // postmaster/abuse recipients
}

func (s *session) AuthMechanisms() []string {
	if !s.submission || len(s.r.o().Users) == 0 {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		hash, ok := s.r.o().Users[user]
		if !ok {
			// Spend the same time as for a known user.
			bcrypt.CompareHashAndPassword([]byte("$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z4zNg6c7z6N3ZP1uxU6mVPYy"), []byte(pass))
			s.r.metrics.Inc("mmsrelay_smtp_rejected_total", "reason", "auth")
			return errBadCreds
		}
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) != nil {
			s.r.metrics.Inc("mmsrelay_smtp_rejected_total", "reason", "auth")
			return errBadCreds
		}
		s.authUser = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return errBadCreds
			}
			return check(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtpErr(504, 5, 5, 4, "Unsupported authentication mechanism")
}

// loginServer is the server side of the LOGIN mechanism, which older
// clients (and some aggregators) still use: "Username:", "Password:".
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if len(resp) > 0 { // initial response carries the user name
			l.user, l.step = string(resp), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.user, string(resp))
	}
	return nil, true, errBadCreds
}

func (s *session) reject(reason string, err *smtp.SMTPError) error {
	s.r.metrics.Inc("mmsrelay_smtp_rejected_total", "reason", reason)
	return err
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.submission && s.authUser == "" {
		return s.reject("auth", errAuthRequired)
	}
	s.Reset()
	if opts != nil {
		s.mailOpts = *opts
	}
	if opts != nil && opts.Size > s.r.o().MaxMessageBytes {
		return s.reject("size", smtpErr(552, 5, 3, 4, fmt.Sprintf("Message too big: the limit is %d bytes", s.r.o().MaxMessageBytes)))
	}
	if err := s.r.st.CheckSpace(context.Background(), s.mailOpts.Size); err != nil {
		if errors.Is(err, store.ErrDiskFull) {
			s.r.log.Warn("refusing mail: disk full", "remote", s.remote.String())
			return s.reject("disk", errDiskFull)
		}
		s.r.log.Error("checking free space", "err", err)
		return s.reject("store", errStore)
	}
	if !s.trusted && s.authUser == "" && from != "" && len(s.r.o().AllowedSenders) > 0 && !senderMatches(from, s.r.o().AllowedSenders) {
		return s.reject("sender", smtpErr(550, 5, 7, 1, "Sender "+from+" may not send MMS through this relay"))
	}
	s.from, s.hasFrom = from, true
	return nil
}

// senderMatches reports whether addr matches a list of addresses and
// "@domain" entries.
func senderMatches(addr string, list []string) bool {
	addr = strings.ToLower(addr)
	for _, e := range list {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == addr || (strings.HasPrefix(e, "@") && strings.HasSuffix(addr, e)) {
			return true
		}
	}
	return false
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if !s.hasFrom {
		return errNoMail
	}
	if len(s.rcpts) >= s.r.o().MaxRecipients {
		return s.reject("recipients", errTooManyRcpts)
	}
	rcpt := store.Recipient{Addr: to}
	if opts != nil {
		for _, n := range opts.Notify {
			rcpt.Notify = append(rcpt.Notify, string(n))
		}
		if opts.OriginalRecipient != "" {
			rcpt.ORCPT = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
		}
	}
	local, domain, ok := strings.Cut(to, "@")
	if !ok || local == "" {
		return s.reject("relay", errRelayDenied)
	}
	_ = local
	switch {
	case strings.EqualFold(to, s.r.o().OriginatorSystem):
		if !s.isPeer() {
			return s.reject("not_peer", errNotPeer)
		}
		if s.numbers > 0 {
			return smtpErr(452, 4, 5, 3, "Send MM4 answers in a transaction of their own")
		}
		s.mm4 = true
	case s.isSpecial(local, domain):
		s.special++
	case s.r.isReplyAddr(domain):
		if s.numbers > 0 || s.mm4 {
			return smtpErr(452, 4, 5, 3, "Send replies in a transaction of their own")
		}
		if err := s.r.rcptReply(context.Background(), to); err != nil {
			return err
		}
		s.replies++
	default:
		if s.mm4 || s.replies > 0 {
			return smtpErr(452, 4, 5, 3, "Send MM4 answers and replies in a transaction of their own")
		}
		rc, err := mapping.ParseRecipient(to, s.r.o().Recipients)
		if err != nil {
			if errors.Is(err, mapping.ErrNotMMSDomain) {
				return s.reject("relay", errRelayDenied)
			}
			return s.reject("not_number", smtpErr(553, 5, 1, 3, fmt.Sprintf("%s: %v", to, err)))
		}
		if _, ok := s.r.routeFor(rc.E164); !ok {
			return s.reject("no_route", smtpErr(550, 5, 1, 1, "No route to "+rc.E164+" from this relay"))
		}
		if err := s.r.checkOptOut(context.Background(), rc.E164, s.from); err != nil {
			s.r.metrics.Inc("mmsrelay_smtp_rejected_total", "reason", "opted_out")
			return err
		}
		if err := s.checkRate(); err != nil {
			return err
		}
		s.numbers++
	}
	s.rcpts = append(s.rcpts, rcpt)
	return nil
}

// checkRate applies the per-sender limits once per message, at its first
// MMS recipient.
func (s *session) checkRate() error {
	if s.numbers > 0 || s.trusted {
		return nil
	}
	from := s.from
	if s.authUser != "" {
		from = "auth:" + s.authUser
	}
	perHour, perDay := s.r.o().SenderPerHour, 0
	for _, q := range s.r.o().Quotas {
		if senderMatches(s.from, []string{q.Sender}) {
			perHour, perDay = q.PerHour, q.PerDay
		}
	}
	if !s.r.limits.allowSender(from, perHour, perDay, s.r.o().Now()) {
		return s.reject("rate", smtpErr(450, 4, 7, 1, "Sending rate exceeded for "+s.from+", try again later"))
	}
	return nil
}

// isSpecial reports whether local@domain is postmaster or abuse at one of
// our domains (RFC 5321 §4.5.1, RFC 2142).
func (s *session) isSpecial(local, domain string) bool {
	l := strings.ToLower(local)
	if l != "postmaster" && l != "abuse" {
		return false
	}
	if strings.EqualFold(domain, s.r.o().Hostname) {
		return true
	}
	if ro := s.r.o().Replies; ro != nil && ro.Domain != "" && strings.EqualFold(domain, ro.Domain) {
		return true
	}
	for _, d := range s.r.o().Recipients.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	if i := strings.IndexByte(s.r.o().OriginatorSystem, '@'); i >= 0 && strings.EqualFold(s.r.o().OriginatorSystem[i+1:], domain) {
		return true
	}
	return false
}

// isPeer reports whether the client is a configured MMSC peer.
func (s *session) isPeer() bool {
	_, ok := s.peer()
	return ok
}

func (s *session) peer() (string, bool) {
	for _, p := range s.r.o().Peers {
		for _, n := range p.Networks {
			if n.Contains(s.remote) {
				return p.Name, true
			}
		}
		for _, want := range p.TLSNames {
			for _, got := range s.tlsNames {
				if strings.EqualFold(want, got) {
					return p.Name, true
				}
			}
		}
		for _, u := range p.Users {
			if s.authUser != "" && u == s.authUser {
				return p.Name, true
			}
		}
	}
	return "", false
}

func (s *session) Data(r io.Reader) error {
	if !s.hasFrom {
		return errNoMail
	}
	if len(s.rcpts) == 0 {
		return errNoRcpt
	}
	start := time.Now()
	var buf bytes.Buffer
	buf.WriteString(s.received())
	if _, err := io.Copy(&buf, r); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return s.reject("size", se)
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			return s.reject("syntax", smtpErr(500, 5, 5, 2, "Line too long"))
		}
		return smtpErr(451, 4, 3, 0, "Error reading the message")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.mm4 {
		return s.r.handleMM4(ctx, s.peerName(), buf.Bytes())
	}
	kind := store.KindMMS
	switch {
	case s.replies > 0:
		kind = store.KindReply
	case s.numbers == 0:
		kind = store.KindPostmaster
	}
	env := store.Envelope{From: s.from, Recipients: s.rcpts, Ret: string(s.mailOpts.Return),
		EnvID: s.mailOpts.EnvelopeID, ReceivedAt: s.r.o().Now().UTC(), RemoteIP: s.remote.String(),
		HELO: s.helo, AuthUser: s.authUser, Kind: kind}
	id, err := s.r.st.Accept(ctx, env, buf.Bytes())
	if err != nil {
		if errors.Is(err, store.ErrDiskFull) {
			s.r.log.Warn("refusing mail: disk full", "remote", s.remote.String())
			return s.reject("disk", errDiskFull)
		}
		s.r.log.Error("storing a message", "err", err, "remote", s.remote.String())
		return s.reject("store", errStore)
	}
	if kind == store.KindReply {
		s.r.ackReply(ctx, buf.Bytes())
	}
	s.r.metrics.Inc("mmsrelay_accepted_total", "kind", string(kind))
	s.r.metrics.Observe("mmsrelay_accept_seconds", time.Since(start).Seconds())
	s.r.log.Info("accepted", "queue_id", id, "from", s.from, "rcpts", len(s.rcpts), "size", buf.Len(), "remote", s.remote.String())
	s.r.Kick()
	return nil
}

func (s *session) peerName() string {
	n, _ := s.peer()
	return n
}

// received is the Received header field we add (RFC 5321 §4.4).
func (s *session) received() string {
	with := "ESMTP"
	if s.tls {
		with = "ESMTPS"
	}
	if s.authUser != "" {
		with += "A"
	}
	return fmt.Sprintf("Received: from %s ([%s])\r\n\tby %s (mmsrelay) with %s;\r\n\t%s\r\n",
		sanitizeHelo(s.helo), s.remote, s.r.o().Hostname, with, s.r.o().Now().Format(time.RFC1123Z))
}

func sanitizeHelo(h string) string {
	h = strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7E || r == '(' || r == ')' {
			return -1
		}
		return r
	}, h)
	if h == "" {
		return "unknown"
	}
	return h
}

func (s *session) Reset() {
	s.from, s.hasFrom, s.rcpts, s.numbers, s.mm4, s.special, s.replies = "", false, nil, 0, false, 0, 0
	s.mailOpts = smtp.MailOptions{}
}

func (s *session) Logout() error { return nil }
