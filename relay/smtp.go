package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
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

// front is the SMTP side: it makes sessions, applies the RCPT policy and
// streams DATA into the queue. MM4 answers to the system address are
// handled inside DATA by answers.
type front struct {
	opts    func() *Options // each command takes one snapshot
	queue   store.Queue
	space   store.SpaceChecker // nil: no free-space check
	limits  *limits
	metrics *Metrics
	log     *slog.Logger
	kick    func()
	answers *answers
}

// backend makes sessions for one listener.
type backend struct {
	f          *front
	submission bool
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := &session{f: b.f, submission: b.submission, helo: c.Hostname()}
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		s.remote = ap.Addr().Unmap()
	}
	s.trusted = b.f.opts().SMTP.Trusted(s.remote)
	if st, ok := c.TLSConnectionState(); ok {
		s.tls = true
		for _, cert := range st.PeerCertificates {
			s.tlsNames = append(s.tlsNames, cert.DNSNames...)
			if cert.Subject.CommonName != "" {
				s.tlsNames = append(s.tlsNames, cert.Subject.CommonName)
			}
		}
	}
	b.f.metrics.Inc("mmsrelay_smtp_sessions_total")
	return s, nil
}

// session is one SMTP session. Its methods return *smtp.SMTPError values.
type session struct {
	f          *front
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
	if !s.submission || len(s.f.opts().SMTP.Users) == 0 {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	users := s.f.opts().SMTP.Users
	check := func(user, pass string) error {
		hash, ok := users[user]
		if !ok {
			// Spend the same time as for a known user.
			bcrypt.CompareHashAndPassword([]byte("$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z4zNg6c7z6N3ZP1uxU6mVPYy"), []byte(pass))
			s.f.metrics.Inc("mmsrelay_smtp_rejected_total", "reason", "auth")
			return errBadCreds
		}
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) != nil {
			s.f.metrics.Inc("mmsrelay_smtp_rejected_total", "reason", "auth")
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
	s.f.metrics.Inc("mmsrelay_smtp_rejected_total", "reason", reason)
	return err
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.submission && s.authUser == "" {
		return s.reject("auth", errAuthRequired)
	}
	s.Reset()
	o := s.f.opts()
	if opts != nil {
		s.mailOpts = *opts
	}
	if opts != nil && opts.Size > o.SMTP.MaxMessageBytes {
		return s.reject("size", smtpErr(552, 5, 3, 4, fmt.Sprintf("Message too big: the limit is %d bytes", o.SMTP.MaxMessageBytes)))
	}
	if s.f.space != nil {
		if err := s.f.space.CheckSpace(context.Background(), s.mailOpts.Size); err != nil {
			if errors.Is(err, store.ErrDiskFull) {
				s.f.log.Warn("refusing mail: disk full", "remote", s.remote.String())
				return s.reject("disk", errDiskFull)
			}
			s.f.log.Error("checking free space", "err", err)
			return s.reject("store", errStore)
		}
	}
	if !s.trusted && s.authUser == "" && from != "" && len(o.SMTP.AllowedSenders) > 0 && !senderMatches(from, o.SMTP.AllowedSenders) {
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
	o := s.f.opts()
	if len(s.rcpts) >= o.SMTP.MaxRecipients {
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
	ctx := context.Background()
	switch {
	case strings.EqualFold(to, o.OriginatorSystem):
		if _, ok := s.peer(o); !ok {
			return s.reject("not_peer", errNotPeer)
		}
		if s.numbers > 0 {
			return smtpErr(452, 4, 5, 3, "Send MM4 answers in a transaction of their own")
		}
		s.mm4 = true
	case s.isSpecial(o, local, domain):
		s.special++
	case isReplyAddr(o, domain):
		if s.numbers > 0 || s.mm4 {
			return smtpErr(452, 4, 5, 3, "Send replies in a transaction of their own")
		}
		if err := rcptReply(ctx, o, to); err != nil {
			return storeErr(s.f.log, err)
		}
		s.replies++
	default:
		if s.mm4 || s.replies > 0 {
			return smtpErr(452, 4, 5, 3, "Send MM4 answers and replies in a transaction of their own")
		}
		rc, err := mapping.ParseRecipient(to, o.Conversion.Recipients)
		if err != nil {
			if errors.Is(err, mapping.ErrNotMMSDomain) {
				return s.reject("relay", errRelayDenied)
			}
			return s.reject("not_number", smtpErr(553, 5, 1, 3, fmt.Sprintf("%s: %v", to, err)))
		}
		if _, ok := routeFor(o, rc.E164); !ok {
			return s.reject("no_route", smtpErr(550, 5, 1, 1, "No route to "+rc.E164+" from this relay"))
		}
		if err := checkOptOut(ctx, o.Replies, rc.E164, s.from); err != nil {
			s.f.metrics.Inc("mmsrelay_smtp_rejected_total", "reason", "opted_out")
			return storeErr(s.f.log, err)
		}
		if err := s.checkRate(o); err != nil {
			return err
		}
		// Parsed once: the worker uses these.
		rcpt.Number, rcpt.Domain = rc.E164, rc.Domain
		s.numbers++
	}
	s.rcpts = append(s.rcpts, rcpt)
	return nil
}

// checkRate applies the per-sender limits once per message, at its first
// MMS recipient.
func (s *session) checkRate(o *Options) error {
	if s.numbers > 0 || s.trusted {
		return nil
	}
	from := s.from
	if s.authUser != "" {
		from = "auth:" + s.authUser
	}
	perHour, perDay := o.SMTP.SenderPerHour, 0
	for _, q := range o.SMTP.Quotas {
		if senderMatches(s.from, []string{q.Sender}) {
			perHour, perDay = q.PerHour, q.PerDay
		}
	}
	if !s.f.limits.allowSender(from, perHour, perDay, o.Now()) {
		return s.reject("rate", smtpErr(450, 4, 7, 1, "Sending rate exceeded for "+s.from+", try again later"))
	}
	return nil
}

// isSpecial reports whether local@domain is postmaster or abuse at one of
// our domains (RFC 5321 §4.5.1, RFC 2142).
func (s *session) isSpecial(o *Options, local, domain string) bool {
	l := strings.ToLower(local)
	if l != "postmaster" && l != "abuse" {
		return false
	}
	if strings.EqualFold(domain, o.Hostname) {
		return true
	}
	if ro := o.Replies; ro != nil && ro.Domain != "" && strings.EqualFold(domain, ro.Domain) {
		return true
	}
	for _, d := range o.Conversion.Recipients.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	if i := strings.IndexByte(o.OriginatorSystem, '@'); i >= 0 && strings.EqualFold(o.OriginatorSystem[i+1:], domain) {
		return true
	}
	return false
}

// peer returns the name of the configured MMSC peer the client is.
func (s *session) peer(o *Options) (string, bool) {
	for _, p := range o.Peers {
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

// maxAnswerBytes is how much of a message to the system address is read:
// MM4 answers and reports are a header block and a short body.
const maxAnswerBytes = 256 << 10

func (s *session) Data(r io.Reader) error {
	if !s.hasFrom {
		return errNoMail
	}
	if len(s.rcpts) == 0 {
		return errNoRcpt
	}
	o := s.f.opts()
	start := time.Now()
	in := &readErr{r: io.MultiReader(strings.NewReader(s.received(o)), r)}
	if s.mm4 {
		// Small: held and parsed here, answered in this transaction.
		raw, err := io.ReadAll(io.LimitReader(in, maxAnswerBytes))
		if err == nil {
			_, err = io.Copy(io.Discard, in)
		}
		if err != nil {
			return s.readError(err)
		}
		peer, _ := s.peer(o)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return s.f.answers.handle(ctx, o, peer, raw)
	}
	kind := store.KindMMS
	switch {
	case s.replies > 0:
		kind = store.KindReply
	case s.numbers == 0:
		kind = store.KindPostmaster
	}
	var body io.Reader = in
	var header *headerTee
	if kind == store.KindReply {
		// An MM4_forward.RES needs only the reply's header block.
		header = &headerTee{max: mm4.MaxHeaderBytes}
		body = io.TeeReader(in, header)
	}
	env := store.Envelope{From: s.from, Recipients: s.rcpts, Ret: string(s.mailOpts.Return),
		EnvID: s.mailOpts.EnvelopeID, ReceivedAt: o.Now().UTC(), RemoteIP: s.remote.String(),
		HELO: s.helo, AuthUser: s.authUser, Kind: kind}
	// No deadline on Accept: it reads the body from the client as it
	// stores it, and the server's read timeout bounds each read.
	id, err := s.f.queue.Accept(context.Background(), env, body)
	if err != nil {
		if in.err != nil {
			return s.readError(in.err)
		}
		if errors.Is(err, store.ErrDiskFull) {
			s.f.log.Warn("refusing mail: disk full", "remote", s.remote.String())
			return s.reject("disk", errDiskFull)
		}
		s.f.log.Error("storing a message", "err", err, "remote", s.remote.String())
		return s.reject("store", errStore)
	}
	if header != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.f.answers.ackReply(ctx, o, header.buf.Bytes())
	}
	s.f.metrics.Inc("mmsrelay_accepted_total", "kind", string(kind))
	s.f.metrics.Observe("mmsrelay_accept_seconds", time.Since(start).Seconds())
	s.f.log.Info("accepted", "queue_id", id, "from", s.from, "rcpts", len(s.rcpts), "size", in.n, "remote", s.remote.String())
	s.f.kick()
	return nil
}

// readError is the SMTP reply for a failure to read DATA: the size limit
// (go-smtp's 552 5.3.4), a line too long, or a broken connection.
func (s *session) readError(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return s.reject("size", se)
	}
	if errors.Is(err, smtp.ErrTooLongLine) {
		return s.reject("syntax", smtpErr(500, 5, 5, 2, "Line too long"))
	}
	return smtpErr(451, 4, 3, 0, "Error reading the message")
}

// readErr remembers the error its reader gave (other than io.EOF), so a
// failed Accept can tell the client's fault from the store's, and counts
// the bytes.
type readErr struct {
	r   io.Reader
	err error
	n   int64
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// headerTee keeps what is written to it up to the end of the header block
// (the first empty line), at most max bytes, and drops the rest.
type headerTee struct {
	buf  bytes.Buffer
	max  int
	done bool
}

func (h *headerTee) Write(p []byte) (int, error) {
	if h.done {
		return len(p), nil
	}
	old := h.buf.Len()
	room := h.max - old
	h.buf.Write(p[:min(len(p), room)])
	b := h.buf.Bytes()
	// Search from just before the new bytes for a blank line: a line
	// feed followed by another, with or without a carriage return
	// between (mm4.Parse finds the end the same way).
	from := max(old-2, 0)
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			h.buf.Truncate(i + 2)
			h.done = true
			break
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			h.buf.Truncate(i + 3)
			h.done = true
			break
		}
	}
	if h.buf.Len() >= h.max {
		h.done = true
	}
	return len(p), nil
}

// received is the Received header field we add (RFC 5321 §4.4).
func (s *session) received(o *Options) string {
	with := "ESMTP"
	if s.tls {
		with = "ESMTPS"
	}
	if s.authUser != "" {
		with += "A"
	}
	return fmt.Sprintf("Received: from %s ([%s])\r\n\tby %s (mmsrelay) with %s;\r\n\t%s\r\n",
		sanitizeHelo(s.helo), s.remote, o.Hostname, with, o.Now().Format(time.RFC1123Z))
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
