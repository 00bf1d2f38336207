package dsn

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message"
)

// maxPart bounds how much of one part Parse reads.
const maxPart = 16 << 20

// Parse reads a delivery status notification: ours, or another MTA's. It
// is lenient: the message/delivery-status part may sit anywhere in the
// MIME tree (not only in a multipart/report), line ends may be bare LF,
// unknown fields, charsets and encodings are passed over, and a date that
// does not parse is left zero. It returns ErrNotDSN when no
// message/delivery-status (or RFC 6533 message/global-delivery-status)
// part is found.
//
// Address and diagnostic fields lose their "rfc822;", "dns;" and "smtp;"
// types (other types are kept, as "type;value"), so that Parse(Build(r))
// gives back r's values. Reasons come from the text/plain explanation when
// it has a "<number or address>: <reason>" line per recipient, as Build
// writes. Report.Original is a copy of the returned message or header,
// with Ret "FULL" or "HDRS" saying which.
func Parse(raw []byte) (*Report, error) {
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("dsn: reading the message: %w", err)
	}
	r := &Report{MessageID: strings.TrimSpace(e.Header.Get("Message-Id"))}
	r.Date, _ = mail.ParseDate(strings.TrimSpace(e.Header.Get("Date")))
	if to := e.Header.Get("To"); to != "" {
		if a, err := mail.ParseAddress(to); err == nil {
			r.OriginalSender = a.Address
		} else {
			r.OriginalSender = strings.Trim(strings.TrimSpace(to), "<>")
		}
	}

	var human string
	var status []byte
	err = e.Walk(func(_ []int, p *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return err
		}
		t, _, _ := p.Header.ContentType()
		switch {
		case t == "message/delivery-status" || t == "message/global-delivery-status":
			if status == nil {
				b, err := readPart(p.Body)
				if err != nil {
					return err
				}
				status = b
			}
		case t == "text/plain" && status == nil && human == "":
			b, err := readPart(p.Body)
			if err != nil {
				return err
			}
			human = string(b)
		case (t == "message/rfc822" || t == "message/global") && status != nil && r.Original == nil:
			b, err := readPart(p.Body)
			if err != nil {
				return err
			}
			r.Original, r.Ret = b, "FULL"
		case (t == "text/rfc822-headers" || t == "message/global-headers") && status != nil && r.Original == nil:
			b, err := readPart(p.Body)
			if err != nil {
				return err
			}
			r.Original, r.Ret = b, "HDRS"
		}
		return nil
	})
	if err != nil && status == nil {
		return nil, fmt.Errorf("dsn: reading the parts: %w", err)
	}
	if status == nil {
		return nil, ErrNotDSN
	}
	if err := parseStatus(r, status); err != nil {
		return nil, err
	}
	reasons(r, human)
	return r, nil
}

// readPart reads at most maxPart octets of a part body.
func readPart(body io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxPart))
	if err != nil {
		return nil, fmt.Errorf("dsn: reading a part: %w", err)
	}
	return b, nil
}

// parseStatus reads the message/delivery-status body (RFC 3464 §2.1):
// per-message fields, an empty line, then blocks of per-recipient fields.
// Lines that are not fields are skipped; extra empty lines are allowed.
func parseStatus(r *Report, body []byte) error {
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	var blocks []map[string]string
	var cur map[string]string
	var last string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSuffix(l, "\r")
		switch {
		case strings.TrimSpace(l) == "":
			cur, last = nil, ""
		case l[0] == ' ' || l[0] == '\t':
			if cur != nil && last != "" {
				cur[last] += " " + strings.TrimSpace(l)
			}
		default:
			k, v, ok := strings.Cut(l, ":")
			k = strings.ToLower(strings.TrimSpace(k))
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				last = ""
				continue
			}
			if cur == nil {
				cur = map[string]string{}
				blocks = append(blocks, cur)
			}
			if _, dup := cur[k]; !dup {
				cur[k] = strings.TrimSpace(v)
				last = k
			} else {
				last = ""
			}
		}
	}
	if len(blocks) == 0 {
		return fmt.Errorf("dsn: the delivery-status part has no fields")
	}
	for i, h := range blocks {
		_, rcpt := h["final-recipient"]
		if i == 0 && !rcpt {
			r.ReportingHost = untype(h["reporting-mta"], "dns")
			r.OriginalEnvelopeID = oneLine(h["original-envelope-id"], 1000)
			r.Arrival = date(h["arrival-date"])
			continue
		}
		if !rcpt && h["action"] == "" {
			continue
		}
		r.Recipients = append(r.Recipients, Recipient{
			Addr:           untype(h["final-recipient"], "rfc822"),
			ORCPT:          untype(h["original-recipient"], "rfc822"),
			Action:         strings.ToLower(strings.TrimSpace(h["action"])),
			Status:         statusCode(h["status"]),
			DiagnosticCode: untype(h["diagnostic-code"], "smtp"),
			RemoteMTA:      untype(h["remote-mta"], "dns"),
			LastAttempt:    date(h["last-attempt-date"]),
			WillRetryUntil: date(h["will-retry-until"]),
		})
	}
	return nil
}

// untype removes the given type ("rfc822;", "dns;", "smtp;") from a field
// value, keeping any other, and unfolds it.
func untype(v, typ string) string {
	v = oneLine(v, 2000)
	if t, rest, ok := strings.Cut(v, ";"); ok && strings.EqualFold(strings.TrimSpace(t), typ) {
		return strings.TrimSpace(rest)
	}
	return v
}

// statusCode takes the x.y.z code, dropping any comment after it.
func statusCode(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t("); i >= 0 {
		v = v[:i]
	}
	return v
}

func date(v string) time.Time {
	t, err := mail.ParseDate(oneLine(v, 200))
	if err != nil {
		return time.Time{}
	}
	return t
}

// reasons fills each recipient's Reason from a "<display>: <reason>" line
// of the explanation, when there is one.
func reasons(r *Report, human string) {
	if human == "" {
		return
	}
	lines := strings.Split(strings.ReplaceAll(human, "\r\n", "\n"), "\n")
	for i := range r.Recipients {
		prefix := display(r.Recipients[i].Addr) + ": "
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				r.Recipients[i].Reason = strings.TrimSpace(l[len(prefix):])
				break
			}
		}
	}
}
