package mm4

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// Forward is an MM4_forward.REQ to write.
type Forward struct {
	Version          string // X-Mms-3GPP-MMS-Version; DefaultVersion if empty
	TransactionID    string
	MessageID        string // X-Mms-Message-ID
	MailMessageID    string // RFC 5322 Message-ID, without brackets; MessageID if empty
	From             string // originator: "+15551234567/TYPE=PLMN" or a mail address
	Sender           string // RFC 5322 Sender, e.g. "+1…/TYPE=PLMN@mms.example.net"
	To, Cc           []string
	Subject          string // UTF-8; RFC 2047-encoded when not ASCII
	Date             time.Time
	Expiry           time.Time // zero: no X-Mms-Expiry
	MessageClass     string    // "Personal", …
	Priority         string    // "Low", "Normal", "High"
	DeliveryReport   bool
	ReadReply        bool
	AckRequest       bool
	OriginatorSystem string // where the peer sends .RES and reports

	// Plain writes an ordinary MIME mail instead, without X-Mms header
	// fields: the MM3 form for an MMSC's email gateway.
	Plain bool

	// Content is the multimedia message: its content type (a WSP multipart
	// type becomes the MIME one) and parts.
	ContentType pdu.ContentType
	Parts       []pdu.Part
}

// WriteForward writes f as an MM4_forward.REQ with CRLF line ends.
func WriteForward(w io.Writer, f *Forward) error {
	bw := bufio.NewWriter(w)
	hw := &headerWriter{w: bw}
	mid := f.MailMessageID
	if mid == "" {
		mid = f.MessageID
	}
	hw.field("From", f.From)
	if f.Sender != "" {
		hw.field("Sender", f.Sender)
	}
	hw.list("To", f.To)
	hw.list("Cc", f.Cc)
	if f.Subject != "" {
		hw.field("Subject", encodeWord(f.Subject))
	}
	hw.field("Date", dateOrNow(f.Date).Format(time.RFC1123Z))
	hw.field("Message-ID", "<"+mid+">")
	hw.field("MIME-Version", "1.0")
	if f.Plain {
		if f.Priority == "High" {
			hw.field("X-Priority", "1")
		}
		if err := writeBody(hw, bw, f.ContentType, f.Parts); err != nil {
			return err
		}
		if hw.err != nil {
			return hw.err
		}
		return bw.Flush()
	}
	hw.field("X-Mms-3GPP-MMS-Version", orDefault(f.Version, DefaultVersion))
	hw.field("X-Mms-Message-Type", ForwardReq)
	hw.field("X-Mms-Transaction-ID", quote(f.TransactionID))
	hw.field("X-Mms-Message-ID", quote(f.MessageID))
	if f.MessageClass != "" {
		hw.field("X-Mms-Message-Class", f.MessageClass)
	}
	if f.Priority != "" {
		hw.field("X-Mms-Priority", f.Priority)
	}
	if !f.Expiry.IsZero() {
		hw.field("X-Mms-Expiry", f.Expiry.UTC().Format(time.RFC1123))
	}
	hw.field("X-Mms-Delivery-Report", yesNo(f.DeliveryReport))
	hw.field("X-Mms-Read-Reply", yesNo(f.ReadReply))
	hw.field("X-Mms-Ack-Request", yesNo(f.AckRequest))
	if f.OriginatorSystem != "" {
		hw.field("X-Mms-Originator-System", f.OriginatorSystem)
	}
	hw.field("X-Mms-Forward-Counter", "1")
	if err := writeBody(hw, bw, f.ContentType, f.Parts); err != nil {
		return err
	}
	if hw.err != nil {
		return hw.err
	}
	return bw.Flush()
}

// Response is an MM4_forward.RES, MM4_delivery_report.RES or
// MM4_read_reply_report.RES.
type Response struct {
	Type          string // ForwardRes, DeliveryReportRes or ReadReplyReportRes
	Version       string
	TransactionID string // copied from the request
	MessageID     string // copied from the request
	StatusCode    string // "Ok", "Error-…"
	StatusText    string
	From, To      string // From: our system address; To: the peer's Originator-System
	Sender        string
	Date          time.Time
}

// WriteResponse writes r with an empty body.
func WriteResponse(w io.Writer, r *Response) error {
	bw := bufio.NewWriter(w)
	hw := &headerWriter{w: bw}
	hw.field("From", r.From)
	if r.Sender != "" {
		hw.field("Sender", r.Sender)
	}
	hw.field("To", r.To)
	hw.field("Date", dateOrNow(r.Date).Format(time.RFC1123Z))
	hw.field("Message-ID", "<"+newID()+">")
	hw.field("MIME-Version", "1.0")
	hw.field("Content-Type", "text/plain; charset=us-ascii")
	hw.field("X-Mms-3GPP-MMS-Version", orDefault(r.Version, DefaultVersion))
	hw.field("X-Mms-Message-Type", r.Type)
	hw.field("X-Mms-Transaction-ID", quote(r.TransactionID))
	hw.field("X-Mms-Message-ID", quote(r.MessageID))
	hw.field("X-Mms-Request-Status-Code", orDefault(r.StatusCode, "Ok"))
	if r.StatusText != "" {
		hw.field("X-Mms-Status-Text", r.StatusText)
	}
	hw.end()
	if hw.err != nil {
		return hw.err
	}
	return bw.Flush()
}

// DeliveryReport is an MM4_delivery_report.REQ: the recipient MMSC tells
// the originator what became of a message.
type DeliveryReport struct {
	Version          string
	TransactionID    string
	MessageID        string // the original message's X-Mms-Message-ID
	From             string // the original recipient
	To               string // the original sender
	Sender           string
	Date             time.Time
	Status           string // "Retrieved", "Rejected", "Expired", …
	StatusText       string
	AckRequest       bool
	OriginatorSystem string
}

// WriteDeliveryReport writes d with an empty body.
func WriteDeliveryReport(w io.Writer, d *DeliveryReport) error {
	bw := bufio.NewWriter(w)
	hw := &headerWriter{w: bw}
	hw.field("From", d.From)
	if d.Sender != "" {
		hw.field("Sender", d.Sender)
	}
	hw.field("To", d.To)
	hw.field("Date", dateOrNow(d.Date).Format(time.RFC1123Z))
	hw.field("Message-ID", "<"+newID()+">")
	hw.field("MIME-Version", "1.0")
	hw.field("Content-Type", "text/plain; charset=us-ascii")
	hw.field("X-Mms-3GPP-MMS-Version", orDefault(d.Version, DefaultVersion))
	hw.field("X-Mms-Message-Type", DeliveryReportReq)
	hw.field("X-Mms-Transaction-ID", quote(d.TransactionID))
	hw.field("X-Mms-Message-ID", quote(d.MessageID))
	hw.field("X-Mms-MM-Status-Code", d.Status)
	if d.StatusText != "" {
		hw.field("X-Mms-Status-Text", d.StatusText)
	}
	hw.field("X-Mms-Ack-Request", yesNo(d.AckRequest))
	if d.OriginatorSystem != "" {
		hw.field("X-Mms-Originator-System", d.OriginatorSystem)
	}
	hw.end()
	if hw.err != nil {
		return hw.err
	}
	return bw.Flush()
}

// MIMEType maps a WSP multipart type to its MIME name
// (application/vnd.wap.multipart.related → multipart/related).
func MIMEType(t string) string {
	if s, ok := strings.CutPrefix(t, "application/vnd.wap.multipart."); ok {
		return "multipart/" + s
	}
	return t
}

// writeBody writes the Content-Type header, the blank line and the body.
func writeBody(hw *headerWriter, w *bufio.Writer, ct pdu.ContentType, parts []pdu.Part) error {
	typ := MIMEType(ct.Type)
	if typ == "" {
		typ = "multipart/mixed"
	}
	if !strings.HasPrefix(typ, "multipart/") {
		if len(parts) != 1 {
			return fmt.Errorf("mm4: content type %s with %d parts", typ, len(parts))
		}
		p := parts[0]
		hw.field("Content-Type", formatType(p.ContentType, ""))
		writePartHeaders(hw, &p)
		hw.end()
		return writeEncoded(w, &p)
	}
	boundary := "mmsrelay-" + newID()
	params := map[string]string{"boundary": boundary}
	for _, p := range ct.Params {
		if p.Name == "type" || p.Name == "start" {
			params[p.Name] = p.Value
		}
	}
	hw.field("Content-Type", mime.FormatMediaType(typ, params))
	hw.end()
	for i := range parts {
		p := &parts[i]
		fmt.Fprintf(w, "--%s\r\n", boundary)
		phw := &headerWriter{w: w}
		phw.field("Content-Type", formatType(p.ContentType, ""))
		writePartHeaders(phw, p)
		phw.end()
		if phw.err != nil {
			return phw.err
		}
		if err := writeEncoded(w, p); err != nil {
			return err
		}
		w.WriteString("\r\n")
	}
	_, err := fmt.Fprintf(w, "--%s--\r\n", boundary)
	return err
}

func writePartHeaders(hw *headerWriter, p *pdu.Part) {
	// base64 for every part, text too: it keeps the bytes exact (line
	// ends included) and the size predictable for the budget.
	hw.field("Content-Transfer-Encoding", "base64")
	if p.ContentID != "" {
		id := p.ContentID
		if !strings.HasPrefix(id, "<") {
			id = "<" + id + ">"
		}
		hw.field("Content-ID", id)
	}
	if p.ContentLocation != "" {
		hw.field("Content-Location", p.ContentLocation)
	}
	if n := p.Name(); n != "" && !isText(p.ContentType.Type) {
		hw.field("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": n}))
	}
}

func isText(t string) bool { return strings.HasPrefix(t, "text/") || t == "application/smil" }

func formatType(ct pdu.ContentType, _ string) string {
	params := map[string]string{}
	for _, p := range ct.Params {
		if p.Name != "" && p.Name != "boundary" {
			params[p.Name] = p.Value
		}
	}
	if s := mime.FormatMediaType(ct.Type, params); s != "" {
		return s
	}
	return ct.Type
}

// writeEncoded writes a part body in base64, 76 columns a line.
func writeEncoded(w *bufio.Writer, p *pdu.Part) error {
	enc := base64.StdEncoding
	buf := make([]byte, enc.EncodedLen(57))
	for b := p.Body; len(b) > 0; {
		n := min(57, len(b))
		enc.Encode(buf, b[:n])
		w.Write(buf[:enc.EncodedLen(n)])
		w.WriteString("\r\n")
		b = b[n:]
	}
	return nil
}

// EncodedSize returns the size of the MIME encoding of parts, as
// WriteForward writes them (headers excluded): what a size budget on MM4
// and MM3 counts.
func EncodedSize(parts []pdu.Part) int {
	n := 0
	for i := range parts {
		b := len(parts[i].Body)
		n += (b+56)/57*78 + 2
		n += 160 + len(parts[i].ContentID) + 2*len(parts[i].ContentLocation)
	}
	return n + 1024
}

type headerWriter struct {
	w   *bufio.Writer
	err error
}

func (h *headerWriter) field(name, value string) {
	if h.err != nil {
		return
	}
	if strings.ContainsAny(value, "\r\n") {
		h.err = fmt.Errorf("mm4: header %s contains a line break", name)
		return
	}
	_, h.err = fmt.Fprintf(h.w, "%s: %s\r\n", name, value)
}

// list writes an address list, folded after commas to keep lines short.
func (h *headerWriter) list(name string, addrs []string) {
	if len(addrs) == 0 || h.err != nil {
		return
	}
	var sb strings.Builder
	line := len(name) + 2
	for i, a := range addrs {
		if i > 0 {
			sb.WriteString(",")
			line++
			if line+len(a) > 76 {
				sb.WriteString("\r\n ")
				line = 1
			} else {
				sb.WriteString(" ")
				line++
			}
		}
		sb.WriteString(a)
		line += len(a)
	}
	if strings.ContainsAny(strings.ReplaceAll(sb.String(), "\r\n ", ""), "\r\n") {
		h.err = fmt.Errorf("mm4: header %s contains a line break", name)
		return
	}
	_, h.err = fmt.Fprintf(h.w, "%s: %s\r\n", name, sb.String())
}

func (h *headerWriter) end() {
	if h.err == nil {
		_, h.err = h.w.WriteString("\r\n")
	}
}

func encodeWord(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || s[i] < 0x20 {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

func quote(s string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"` }

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func dateOrNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
