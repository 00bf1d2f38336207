// Package mm4 reads and writes MM4 messages (3GPP TS 23.140 §8): the
// Internet mail that MMS relay/servers exchange over SMTP, whose X-Mms-*
// header fields carry the MM4 information elements and whose MIME body
// carries the multimedia message.
//
// Reading is forgiving, as real peers are: header names in any case, a
// byte order mark before the first header, LF or CRLF line ends, quoted
// or bare transaction and message IDs, and SMTP residue (".", "QUIT", "250
// Ok") after the message. Writing follows the specification's spelling.
package mm4

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/mmsrelay/mmsrelay/mapping/internal/mimesplit"
)

// MM4 message types, as X-Mms-Message-Type spells them.
const (
	ForwardReq            = "MM4_forward.REQ"
	ForwardRes            = "MM4_forward.RES"
	DeliveryReportReq     = "MM4_delivery_report.REQ"
	DeliveryReportRes     = "MM4_delivery_report.RES"
	ReadReplyReportReq    = "MM4_read_reply_report.REQ"
	ReadReplyReportRes    = "MM4_read_reply_report.RES"
	CapabilityNegotiation = "MM4_capability_negotiation.REQ"
)

var knownTypes = []string{ForwardReq, ForwardRes, DeliveryReportReq, DeliveryReportRes,
	ReadReplyReportReq, ReadReplyReportRes, CapabilityNegotiation, "MM4_capability_negotiation.RES"}

// DefaultVersion is the X-Mms-3GPP-MMS-Version this package writes.
const DefaultVersion = "6.3.0"

// ErrNotMM4 is returned by Parse for a mail message without an
// X-Mms-Message-Type header.
var ErrNotMM4 = errors.New("mm4: not an MM4 message (no X-Mms-Message-Type header)")

// MaxHeaderBytes bounds the header block Parse reads.
const MaxHeaderBytes = 256 << 10

// Message is a parsed MM4 message: its information elements, the whole
// header, and the body (the multimedia message's MIME content, if any).
type Message struct {
	Type          string // canonical spelling, e.g. ForwardReq
	Version       string // X-Mms-3GPP-MMS-Version
	TransactionID string // quotes removed
	MessageID     string // X-Mms-Message-ID, quotes removed

	From             string   // From, as sent ("+15551234567/TYPE=PLMN")
	To               []string // To, split at commas
	Cc               []string
	Sender           string // RFC 5322 Sender
	OriginatorSystem string // where .RES messages go
	Subject          string // decoded from RFC 2047
	Date             time.Time

	MessageClass      string
	Priority          string
	Expiry            string // as sent: a date or a number of seconds
	AckRequest        bool
	DeliveryReport    bool
	ReadReply         bool
	RequestStatusCode string // .RES: "Ok", "Error-…"
	StatusText        string
	MMStatusCode      string // delivery report: "Retrieved", "Rejected", …
	ReadStatus        string // read reply report

	// Header is the whole header block, in order.
	Header textproto.Header
	// Body is the message body after the header block, with any SMTP
	// residue after the MIME content removed when it could be told apart.
	Body []byte
}

// IsType reports whether m is of type t, compared as peers do:
// case-insensitively.
func (m *Message) IsType(t string) bool { return strings.EqualFold(m.Type, t) }

// Parse reads an MM4 message. It returns ErrNotMM4 for mail without an
// X-Mms-Message-Type header.
func Parse(raw []byte) (*Message, error) {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	end := len(raw) // no blank line: all header
	if i, n := mimesplit.HeaderEnd(raw); i >= 0 {
		end = i + n
	}
	if end > MaxHeaderBytes {
		return nil, fmt.Errorf("mm4: header block over %d bytes", MaxHeaderBytes)
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw[:end])))
	if err != nil {
		return nil, fmt.Errorf("%w: unreadable header: %v", ErrNotMM4, err)
	}
	body := raw[end:]
	m := &Message{Header: h}
	typ := strings.TrimSpace(h.Get("X-Mms-Message-Type"))
	if typ == "" {
		return nil, ErrNotMM4
	}
	m.Type = typ
	for _, k := range knownTypes {
		if strings.EqualFold(k, typ) {
			m.Type = k
		}
	}
	m.Version = strings.TrimSpace(h.Get("X-Mms-3GPP-MMS-Version"))
	m.TransactionID = unquote(h.Get("X-Mms-Transaction-ID"))
	m.MessageID = unquote(h.Get("X-Mms-Message-ID"))
	m.From = strings.TrimSpace(h.Get("From"))
	m.To = splitAddrs(h.Values("To"))
	m.Cc = splitAddrs(h.Values("Cc"))
	m.Sender = strings.TrimSpace(h.Get("Sender"))
	m.OriginatorSystem = strings.TrimSpace(h.Get("X-Mms-Originator-System"))
	dec := mime.WordDecoder{CharsetReader: charsetReader}
	subj := h.Get("Subject")
	if s, err := dec.DecodeHeader(subj); err == nil {
		subj = s
	}
	m.Subject = strings.TrimSpace(subj)
	if d, err := mail.ParseDate(strings.TrimSpace(h.Get("Date"))); err == nil {
		m.Date = d
	}
	m.MessageClass = strings.TrimSpace(h.Get("X-Mms-Message-Class"))
	m.Priority = strings.TrimSpace(h.Get("X-Mms-Priority"))
	m.Expiry = strings.TrimSpace(h.Get("X-Mms-Expiry"))
	m.AckRequest = yes(h.Get("X-Mms-Ack-Request"))
	m.DeliveryReport = yes(h.Get("X-Mms-Delivery-Report"))
	m.ReadReply = yes(h.Get("X-Mms-Read-Reply"))
	m.RequestStatusCode = strings.TrimSpace(h.Get("X-Mms-Request-Status-Code"))
	m.StatusText = strings.TrimSpace(h.Get("X-Mms-Status-Text"))
	m.MMStatusCode = strings.TrimSpace(h.Get("X-Mms-MM-Status-Code"))
	m.ReadStatus = strings.TrimSpace(h.Get("X-Mms-Read-Status"))
	m.Body = trimResidue(body)
	if len(bytes.TrimSpace(m.Body)) == 0 {
		m.Body = nil
	}
	return m, nil
}

func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "utf-8", "us-ascii", "":
		return input, nil
	}
	return nil, fmt.Errorf("mm4: charset %q", charset)
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return s[1 : len(s)-1]
	}
	return s
}

func splitAddrs(values []string) []string {
	var out []string
	for _, v := range values {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}

func yes(s string) bool {
	s = strings.TrimSpace(s)
	return strings.EqualFold(s, "Yes") || s == "1" || strings.EqualFold(s, "true")
}

// trimResidue removes what an SMTP transcript leaves after the message: a
// line holding only ".", and the commands and replies after it.
func trimResidue(body []byte) []byte {
	for _, start := range []string{".\r\n", ".\n"} {
		if bytes.HasPrefix(body, []byte(start)) && residueOnly(body[len(start):]) {
			return nil
		}
	}
	for _, end := range []string{"\n.\r\n", "\n.\n"} {
		if i := bytes.LastIndex(body, []byte(end)); i >= 0 && residueOnly(body[i+len(end):]) {
			return body[:i+1]
		}
	}
	if bytes.HasSuffix(body, []byte("\n.")) || bytes.Equal(body, []byte(".")) {
		return body[:len(body)-1]
	}
	return body
}

// residueOnly reports whether every line of b looks like an SMTP command
// or reply.
func residueOnly(b []byte) bool {
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		up := strings.ToUpper(line)
		if strings.HasPrefix(up, "QUIT") || strings.HasPrefix(up, "RSET") ||
			(len(line) >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' && line[2] >= '0' && line[2] <= '9') {
			continue
		}
		return false
	}
	return true
}
