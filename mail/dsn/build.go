package dsn

// Design note. Build writes the report by hand rather than through a MIME
// writer, so that it controls every byte that reaches the wire:
//
//   - Addresses and host names come from our envelope. A CR, LF or other
//     control character in one is an error, never something to mend.
//   - Reasons, diagnostic codes and the original subject come from remote
//     servers and from the sender. They are made single-line (controls
//     become spaces) before use, so that none can add a header field or a
//     delivery-status field (a forged "Action: delivered", say).
//   - message/delivery-status is US-ASCII (RFC 3464 §2.1.1): other octets
//     in its text become '?'. The human part is UTF-8 in quoted-printable;
//     a non-ASCII subject is an RFC 2047 encoded-word.
//   - The original is returned with its line ends made CRLF, whole when
//     small enough, else its header only (text/rfc822-headers, RFC 6522 §4).

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

var (
	// RFC 3463 §2: class "." subject "." detail; class is 2, 4 or 5.
	statusRE = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)
	// An address type (RFC 3464 §2.1.2 atom) before ";".
	typeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_-]*;`)
	// A host name or address literal for Reporting-MTA and Message-ID.
	hostRE = regexp.MustCompile(`^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\]|\[IPv6:[0-9A-Fa-f:.]+\])$`)
	// A msg-id as we pass it on (RFC 5322 §3.6.4, without comments).
	msgIDRE = regexp.MustCompile(`^<[^<>\s]{1,900}>$`)
	// A phone number as an MMS address: "+15551234567", "15551234567/TYPE=PLMN".
	phoneRE = regexp.MustCompile(`^(\+?[0-9]{3,20})(?:/TYPE=PLMN)?$`)
)

// Build writes r as a complete RFC 5322 message with CRLF line ends, to be
// sent from the null reverse path to r.OriginalSender. It returns
// ErrNullSender when that sender is the null sender, and an error for a
// missing host or recipient, an invalid action or status, or an address
// with control characters. The result does not alias r.Original.
func Build(r Report) ([]byte, error) {
	if NullSender(r.OriginalSender) {
		return nil, ErrNullSender
	}
	sender := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(r.OriginalSender), "<"), ">")
	if err := checkAddr(sender); err != nil {
		return nil, fmt.Errorf("dsn: original sender: %w", err)
	}
	if !hostRE.MatchString(r.ReportingHost) {
		return nil, fmt.Errorf("dsn: reporting host %q is not a host name", r.ReportingHost)
	}
	if len(r.Recipients) == 0 {
		return nil, fmt.Errorf("dsn: no recipients to report on")
	}
	rcpts := make([]Recipient, len(r.Recipients))
	for i, rc := range r.Recipients {
		rc.Action = strings.ToLower(strings.TrimSpace(rc.Action))
		switch rc.Action {
		case ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded:
		default:
			return nil, fmt.Errorf("dsn: recipient %d: unknown action %q", i, rc.Action)
		}
		if err := checkAddr(rc.Addr); err != nil {
			return nil, fmt.Errorf("dsn: recipient %d: %w", i, err)
		}
		if rc.ORCPT != "" {
			if err := checkAddr(rc.ORCPT); err != nil {
				return nil, fmt.Errorf("dsn: recipient %d: original recipient: %w", i, err)
			}
		}
		if rc.Status == "" {
			rc.Status = defaultStatus(rc.Action)
		}
		if !statusRE.MatchString(rc.Status) {
			return nil, fmt.Errorf("dsn: recipient %d: status %q is not x.y.z (RFC 3463)", i, rc.Status)
		}
		rc.DiagnosticCode = oneLine(rc.DiagnosticCode, 900)
		rc.RemoteMTA = oneLine(rc.RemoteMTA, 255)
		rc.Reason = oneLine(rc.Reason, 1000)
		rcpts[i] = rc
	}
	worst := worstAction(rcpts)

	limit := r.MaxOriginal
	if limit <= 0 {
		limit = DefaultMaxOriginal
	}
	orig := crlf(r.Original)
	subject, origID := originalHeader(orig)
	full := worst == ActionFailed && !strings.EqualFold(strings.TrimSpace(r.Ret), "HDRS")
	tooLarge := false
	var returned []byte
	if len(orig) > 0 {
		if full && len(orig) <= limit {
			returned = orig
		} else {
			tooLarge = full
			full = false
			returned = headerBlock(orig, limit)
		}
	}

	date := r.Date
	if date.IsZero() {
		date = time.Now()
	}
	msgID := r.MessageID
	if msgID == "" {
		msgID = "<" + strings.ToLower(date.UTC().Format("20060102T150405Z")) + "." + randHex(8) + "@" + r.ReportingHost + ">"
	}
	if !msgIDRE.MatchString(msgID) {
		return nil, fmt.Errorf("dsn: message id %q is not <id@host>", msgID)
	}

	human := humanText(r, rcpts, worst, subject, full, tooLarge, len(returned) > 0)
	status := statusText(r, rcpts)

	var boundary string
	for {
		boundary = "=_dsn_" + randHex(12)
		if !bytes.Contains(returned, []byte(boundary)) {
			break
		}
	}

	var b bytes.Buffer
	prefix := map[string]string{
		ActionFailed: "Undelivered MMS: ", ActionDelayed: "Delayed MMS: ",
	}[worst]
	if prefix == "" {
		prefix = "Delivered MMS: "
	}
	subj := subject
	if subj == "" {
		subj = "(no subject)"
	}
	writeField(&b, "From", "Mail Delivery System <MAILER-DAEMON@"+r.ReportingHost+">")
	writeField(&b, "To", "<"+sender+">")
	writeField(&b, "Subject", prefix+mime.QEncoding.Encode("utf-8", subj))
	writeField(&b, "Date", date.Format(time.RFC1123Z))
	writeField(&b, "Message-ID", msgID)
	if origID != "" {
		writeField(&b, "In-Reply-To", origID)
		writeField(&b, "References", origID)
	}
	writeField(&b, "Auto-Submitted", "auto-replied")
	writeField(&b, "MIME-Version", "1.0")
	writeField(&b, "Content-Type", `multipart/report; report-type=delivery-status; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	b.WriteString("This is a MIME-encapsulated delivery status notification.\r\n")

	// Part 1: the explanation in plain words.
	b.WriteString("\r\n--" + boundary + "\r\n")
	writeField(&b, "Content-Type", "text/plain; charset=utf-8")
	writeField(&b, "Content-Transfer-Encoding", "quoted-printable")
	writeField(&b, "Content-Description", "Notification")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(human)); err != nil {
		return nil, fmt.Errorf("dsn: encoding the explanation: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("dsn: encoding the explanation: %w", err)
	}
	b.WriteString("\r\n")

	// Part 2: the machine-readable report.
	b.WriteString("\r\n--" + boundary + "\r\n")
	writeField(&b, "Content-Type", "message/delivery-status")
	writeField(&b, "Content-Description", "Delivery report")
	b.WriteString("\r\n")
	b.WriteString(status)

	// Part 3: the original, or its header.
	if len(returned) > 0 {
		b.WriteString("\r\n--" + boundary + "\r\n")
		if full {
			writeField(&b, "Content-Type", "message/rfc822")
			writeField(&b, "Content-Description", "Undelivered message")
		} else {
			writeField(&b, "Content-Type", "text/rfc822-headers")
			writeField(&b, "Content-Description", "Message header")
		}
		if has8bit(returned) {
			writeField(&b, "Content-Transfer-Encoding", "8bit")
		}
		b.WriteString("\r\n")
		b.Write(returned)
		if !bytes.HasSuffix(returned, []byte("\r\n")) {
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

// statusText is the message/delivery-status body (RFC 3464 §2.1): the
// per-message fields, then a block per recipient, each block ending with
// an empty line.
func statusText(r Report, rcpts []Recipient) string {
	var b bytes.Buffer
	writeField(&b, "Reporting-MTA", "dns; "+r.ReportingHost)
	if id := ascii(oneLine(r.OriginalEnvelopeID, 100)); id != "" {
		writeField(&b, "Original-Envelope-Id", id)
	}
	if !r.Arrival.IsZero() {
		writeField(&b, "Arrival-Date", r.Arrival.Format(time.RFC1123Z))
	}
	for _, rc := range rcpts {
		b.WriteString("\r\n")
		if rc.ORCPT != "" {
			writeField(&b, "Original-Recipient", typed(rc.ORCPT))
		}
		writeField(&b, "Final-Recipient", typed(rc.Addr))
		writeField(&b, "Action", rc.Action)
		writeField(&b, "Status", rc.Status)
		if rc.RemoteMTA != "" {
			writeField(&b, "Remote-MTA", "dns; "+ascii(rc.RemoteMTA))
		}
		if rc.DiagnosticCode != "" {
			d := ascii(rc.DiagnosticCode)
			if !typeRE.MatchString(d) {
				d = "smtp; " + d
			}
			writeField(&b, "Diagnostic-Code", d)
		}
		if !rc.LastAttempt.IsZero() {
			writeField(&b, "Last-Attempt-Date", rc.LastAttempt.Format(time.RFC1123Z))
		}
		if rc.Action == ActionDelayed && !rc.WillRetryUntil.IsZero() {
			writeField(&b, "Will-Retry-Until", rc.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
	return b.String()
}

// humanText is the explanation for the sender, one line per recipient of
// the form "<number>: <why>" (Parse reads the reasons back from it).
func humanText(r Report, rcpts []Recipient, worst, subject string, full, tooLarge, returned bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail delivery system at %s.\n\n", r.ReportingHost)
	switch worst {
	case ActionFailed:
		b.WriteString("Your message could not be delivered as an MMS to one or more of its recipients.\n")
	case ActionDelayed:
		b.WriteString("Your message has not yet been delivered as an MMS to one or more of its recipients.\n" +
			"You do not need to send it again: delivery goes on, and you will be told if it fails.\n")
	case ActionRelayed:
		b.WriteString("Your message was handed on to the mobile network as an MMS.\n")
	default:
		b.WriteString("Your message was delivered as an MMS.\n")
	}
	b.WriteString("\n")
	if subject != "" {
		fmt.Fprintf(&b, "Subject: %s\n", subject)
	}
	if !r.Arrival.IsZero() {
		fmt.Fprintf(&b, "Sent: %s\n", r.Arrival.UTC().Format("Mon, 2 Jan 2006 15:04 MST"))
	}
	if subject != "" || !r.Arrival.IsZero() {
		b.WriteString("\n")
	}
	for _, rc := range rcpts {
		fmt.Fprintf(&b, "%s: %s\n", display(rc.Addr), reason(rc))
	}
	b.WriteString("\n")
	switch {
	case full:
		b.WriteString("Your original message is attached.\n")
	case tooLarge:
		b.WriteString("Your original message is too large to return in full; its header is attached.\n")
	case returned:
		b.WriteString("The header of your original message is attached.\n")
	}
	return b.String()
}

// reason is rc.Reason, or words made from its action and diagnostic.
func reason(rc Recipient) string {
	if rc.Reason != "" {
		return rc.Reason
	}
	diag := strings.TrimSpace(rc.DiagnosticCode)
	if typeRE.MatchString(diag) {
		diag = strings.TrimSpace(diag[strings.IndexByte(diag, ';')+1:])
	}
	switch rc.Action {
	case ActionFailed:
		switch {
		case diag != "":
			return "The mobile network refused the message: " + diag
		case strings.HasSuffix(rc.Status, ".4.7"):
			return "The message could not be delivered in the time allowed."
		}
		return "The message could not be delivered (status " + rc.Status + ")."
	case ActionDelayed:
		s := "The message has not been delivered yet"
		if diag != "" {
			s += " (last answer: " + diag + ")"
		}
		if !rc.WillRetryUntil.IsZero() {
			s += "; delivery will be tried until " + rc.WillRetryUntil.UTC().Format("Mon, 2 Jan 2006 15:04 MST")
		}
		return s + "."
	case ActionRelayed:
		return "The message was handed to the mobile network, which does not confirm delivery."
	case ActionExpanded:
		return "The message was delivered and forwarded to further addresses."
	}
	return "The message was delivered."
}

// display is how the explanation names a recipient: the phone number for an
// MMS address, else the address.
func display(addr string) string {
	if typeRE.MatchString(addr) {
		addr = strings.TrimSpace(addr[strings.IndexByte(addr, ';')+1:])
	}
	local := addr
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local = addr[:i]
	}
	if m := phoneRE.FindStringSubmatch(local); m != nil {
		return m[1]
	}
	return addr
}

// typed writes an address with its type: "rfc822;" unless it has one.
func typed(a string) string {
	a = strings.TrimSpace(a)
	if typeRE.MatchString(a) {
		return a
	}
	return "rfc822;" + a
}

func defaultStatus(action string) string {
	switch action {
	case ActionFailed:
		return "5.0.0"
	case ActionDelayed:
		return "4.0.0"
	}
	return "2.0.0"
}

// worstAction picks what the report is about: failed over delayed over
// the rest.
func worstAction(rcpts []Recipient) string {
	worst := rcpts[0].Action
	for _, rc := range rcpts {
		switch {
		case rc.Action == ActionFailed:
			return ActionFailed
		case rc.Action == ActionDelayed:
			worst = ActionDelayed
		case worst != ActionDelayed && rc.Action == ActionDelivered:
			worst = ActionDelivered
		}
	}
	return worst
}

// checkAddr refuses an empty address and one with control characters or
// angle brackets, which could break out of a field.
func checkAddr(a string) error {
	if strings.TrimSpace(a) == "" {
		return fmt.Errorf("empty address")
	}
	if len(a) > 998 {
		return fmt.Errorf("address too long")
	}
	if !utf8.ValidString(a) {
		return fmt.Errorf("address %q is not UTF-8", a)
	}
	for _, c := range a {
		if c < 0x20 || c == 0x7f || c == '<' || c == '>' {
			return fmt.Errorf("address %q has a forbidden character %q", a, c)
		}
	}
	return nil
}

// oneLine makes s a single line of valid UTF-8 of at most limit runes:
// controls (CR and LF among them) become spaces, runs of spaces one.
func oneLine(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	n := 0
	for _, c := range s {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == '\u2028' || c == '\u2029' || c == ' ' {
			space = true
			continue
		}
		if n >= limit {
			b.WriteString("…")
			break
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(c)
		n++
	}
	return b.String()
}

// ascii replaces the non-ASCII runes of s with '?'.
func ascii(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 0x80 {
			return '?'
		}
		return c
	}, s)
}

// writeField writes "k: v" and CRLF, folding at spaces to keep lines
// within 78 octets where the value allows. v must be a single line.
func writeField(b *bytes.Buffer, k, v string) {
	line := k + ":"
	col := len(line)
	for i, w := range strings.Split(v, " ") {
		if w == "" && i > 0 {
			continue
		}
		if col+1+len(w) > 78 && col > len(k)+1 {
			b.WriteString(line + "\r\n")
			line, col = "", 0
		}
		line += " " + w
		col += 1 + len(w)
	}
	b.WriteString(line + "\r\n")
}

// crlf returns a copy of b with every line ending in CRLF.
func crlf(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/50)
	for i, c := range b {
		switch {
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			out = append(out, '\r', '\n')
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// headerBlock returns the header section of msg (CRLF line ends), ending
// with its last CRLF and cut at a field boundary to at most limit octets.
func headerBlock(msg []byte, limit int) []byte {
	h := msg
	if bytes.HasPrefix(msg, []byte("\r\n")) {
		return nil
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		h = msg[:i+2]
	}
	if len(h) <= limit {
		return h
	}
	cut := 0
	for i := 0; i+2 <= limit; {
		j := bytes.Index(h[i:], []byte("\r\n"))
		if j < 0 || i+j+2 > limit {
			break
		}
		i += j + 2
		if i < len(h) && h[i] != ' ' && h[i] != '\t' {
			cut = i
		}
	}
	return h[:cut]
}

// originalHeader returns the decoded subject (one line) and the Message-ID
// of msg, each "" when absent or unusable. It reads the header leniently:
// a malformed line is skipped, not an error.
func originalHeader(msg []byte) (subject, msgID string) {
	raw, ok := field(headerBlock(msg, len(msg)), "Subject")
	if ok {
		dec := mime.WordDecoder{CharsetReader: charset.Reader}
		if s, err := dec.DecodeHeader(raw); err == nil {
			raw = s
		}
		subject = oneLine(raw, 200)
	}
	if id, _ := field(headerBlock(msg, len(msg)), "Message-Id"); msgIDRE.MatchString(strings.TrimSpace(id)) {
		msgID = strings.TrimSpace(id)
	}
	return subject, msgID
}

// field returns the unfolded value of the first name field in the header
// block h (CRLF line ends).
func field(h []byte, name string) (string, bool) {
	lines := strings.Split(string(h), "\r\n")
	for i, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(strings.TrimRight(k, " \t"), name) {
			continue
		}
		for _, c := range lines[i+1:] {
			if c == "" || (c[0] != ' ' && c[0] != '\t') {
				break
			}
			v += c
		}
		return strings.TrimSpace(v), true
	}
	return "", false
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

func randHex(n int) string {
	p := make([]byte, n)
	rand.Read(p) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(p)
}
