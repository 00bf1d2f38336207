package mapping

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mmsrelay/mmsrelay/adapt"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// Interface is what a converted message is sized for: what leaves the
// relay on the route's wire. The budget counts the binary PDU on the outbox
// and MM1, the whole MIME message (base64 and all) on MM4 and MM3.
type Interface uint8

// Interfaces.
const (
	InterfacePDU Interface = iota // the binary M-Send.req (outbox, MM1)
	InterfaceMM4                  // an MM4_forward.REQ MIME message
	InterfaceMM3                  // a plain MIME mail to the MMSC's gateway
)

var interfaceNames = [...]string{InterfacePDU: "pdu", InterfaceMM4: "mm4", InterfaceMM3: "mm3"}

func (i Interface) String() string {
	if int(i) < len(interfaceNames) {
		return interfaceNames[i]
	}
	return fmt.Sprintf("Interface(%d)", uint8(i))
}

// RecipientKind says in which header a recipient appears.
type RecipientKind int

// Recipient kinds.
const (
	KindTo RecipientKind = iota
	KindCc
	KindBcc
)

// MMSRecipient is one number of a converted message.
type MMSRecipient struct {
	E164 string // "+15551234567" or a short code
	Kind RecipientKind
}

// ConvertOptions controls ToMMS.
type ConvertOptions struct {
	// Profile is the content profile; its MaxMessageBytes is the budget.
	Profile adapt.Profile
	// Budget overrides Profile.MaxMessageBytes when positive (a retry
	// after a peer refused the size goes smaller).
	Budget int
	// Interface is InterfacePDU (default), InterfaceMM4 or InterfaceMM3.
	Interface Interface
	// Type is pdu.TypeSendReq (default) or pdu.TypeRetrieveConf.
	Type pdu.MessageType
	// From overrides the originator (the masked reply address); empty uses
	// the email's From, display name kept.
	From string
	// TransactionID and MessageID are the identifiers to use; empty makes
	// new ones. A retry passes the stored ones.
	TransactionID string
	MessageID     string
	// SubjectMaxChars cuts the subject (0: no limit).
	SubjectMaxChars int
	// Expiry asks the MMSC to keep the message this long (0: none).
	Expiry time.Duration
	// DeliveryReport asks for a delivery report whatever the email says.
	DeliveryReport bool
	// MessageClass is pdu.ClassPersonal (default) or another class.
	MessageClass string
	// Now is the time of conversion (default time.Now).
	Now time.Time
	// Forward is how the route builds the MIME message on InterfaceMM4
	// and InterfaceMM3 (identifiers, addresses, Sender, originator
	// system, acknowledgement): the message is sized as mm4.NewForward
	// builds it with these options, the ones the route sends it with.
	// InterfaceMM3 sets Plain. Unused on InterfacePDU.
	Forward mm4.ForwardOptions
}

// Conversion is the result of ToMMS.
type Conversion struct {
	MMS     *pdu.Message
	Dropped []adapt.Dropped
	// Notes say what was changed to fit (a clip cut short), as in the text.
	Notes []string
	// Size is the message's size on the interface it was sized for.
	Size int
	// PDU is the binary encoding of MMS (MMS.Append(nil)) when the
	// message was sized for InterfacePDU, so that a route can write it
	// without encoding it again; nil on the other interfaces. It is valid
	// while MMS is not changed: whoever changes MMS must set PDU to nil
	// (or encode again).
	PDU []byte
}

// ErrNoRecipients is returned by ToMMS for an empty recipient list.
var ErrNoRecipients = errors.New("mapping: no MMS recipient")

// ErrNoContent is returned when nothing of the email can be sent.
var ErrNoContent = errors.New("mapping: nothing in the email can be sent as MMS")

// ToMMS converts e into an MMS for rcpts that fits opts.Profile on
// opts.Interface. Media are adapted (scaled, re-encoded, dropped with a
// note in the text); the text is cut to the profile; a SMIL presentation
// comes first, one slide per media item.
func ToMMS(ctx context.Context, e *Email, rcpts []MMSRecipient, opts ConvertOptions) (*Conversion, error) {
	if len(rcpts) == 0 {
		return nil, ErrNoRecipients
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Type == 0 {
		opts.Type = pdu.TypeSendReq
	}
	limit := opts.Profile.MaxMessageBytes
	if opts.Budget > 0 && (limit == 0 || opts.Budget < limit) {
		limit = opts.Budget
	}
	if limit <= 0 {
		limit = 600 * 1024
	}
	m := headers(e, rcpts, &opts)

	items := make([]adapt.Item, 0, len(e.Media))
	for _, a := range e.Media {
		items = append(items, adapt.Item{Name: a.Name, ContentType: a.ContentType, Data: a.Data})
	}
	text := e.Text
	maxText := opts.Profile.MaxTextBytes
	if maxText <= 0 {
		maxText = 5000
	}
	// Fit media to what is left once headers, text and SMIL are counted;
	// shrink the budget by any overshoot and fit again (at most 4 rounds).
	// On InterfacePDU the headers are encoded into the buffer the whole
	// PDU is encoded into later, made large enough for it at once.
	need := 512
	if opts.Interface == InterfacePDU {
		need += 2048 + len(text) + 256*len(items)
		for _, it := range items {
			need += len(it.Data)
		}
		// Adapted media fit the limit: a 10 MB photo does not make a
		// 10 MB buffer for a 600 KB message.
		need = min(need, limit+4096)
	}
	buf, _ := m.Append(make([]byte, 0, need))
	overhead := len(buf) + 1200 + 220*len(items) + min(len(text), maxText) + 200
	var res adapt.Result
	var dropped []adapt.Dropped
	mediaBudget := mediaBytes(limit-overhead, opts.Interface)
	for round := 0; ; round++ {
		var err error
		res, err = adapt.Fit(ctx, items, max(mediaBudget, 0), opts.Profile)
		if err != nil {
			return nil, fmt.Errorf("mapping: adapting media: %w", err)
		}
		dropped = res.Dropped
		body := text
		notes := append([]string(nil), res.Notes...) // clips cut to fit
		for _, d := range dropped {
			notes = append(notes, d.Note)
		}
		for _, n := range notes {
			body = strings.TrimRight(body, "\n")
			if body != "" {
				body += "\n"
			}
			body += n
		}
		body = adapt.TruncateText(body, maxText)
		assemble(m, res.Items, body)
		var size int
		size, buf, err = encodedSize(m, opts.Interface, opts.Forward, buf[:0])
		if err != nil {
			return nil, err
		}
		if size <= limit {
			if len(m.Parts) <= 1 && body == "" {
				return nil, ErrNoContent
			}
			c := &Conversion{MMS: m, Dropped: dropped, Notes: res.Notes, Size: size}
			if opts.Interface == InterfacePDU {
				c.PDU = buf
			}
			return c, nil
		}
		if round >= 4 || mediaBudget <= 0 {
			// Give up on media: text alone.
			if len(res.Items) > 0 {
				items = nil
				mediaBudget = 0
				continue
			}
			return nil, fmt.Errorf("mapping: the message is %d bytes even without media, over the limit of %d", size, limit)
		}
		mediaBudget -= mediaBytes(size-limit, opts.Interface) + 512
	}
}

// mediaBytes converts a budget on the interface into raw media bytes:
// base64 takes 78 octets (with CRLF) for every 57 on MM4 and MM3.
func mediaBytes(n int, iface Interface) int {
	if iface == InterfaceMM4 || iface == InterfaceMM3 {
		return n * 57 / 78
	}
	return n
}

// smtpHopPad is what the SMTP hop adds to an MM4 or MM3 message on the
// way, beyond what mm4.NewForward builds: the receiving MTA's Received and
// Return-Path header fields.
const smtpHopPad = 256

// encodedSize is the size of m on the interface. On InterfacePDU it
// appends the encoded PDU to buf and returns it; on InterfaceMM4 and
// InterfaceMM3 it writes the message as mm4.NewForward builds it with fo
// (Plain on MM3) and returns buf as it was.
func encodedSize(m *pdu.Message, iface Interface, fo mm4.ForwardOptions, buf []byte) (int, []byte, error) {
	switch iface {
	case InterfaceMM4, InterfaceMM3:
		var c countWriter
		fo.Plain = fo.Plain || iface == InterfaceMM3
		if err := mm4.WriteForward(&c, mm4.NewForward(m, fo)); err != nil {
			return 0, buf, fmt.Errorf("mapping: sizing the MIME message: %w", err)
		}
		return c.n + smtpHopPad, buf, nil
	}
	b, err := m.Append(buf)
	if err != nil {
		return 0, buf, fmt.Errorf("mapping: encoding the PDU: %w", err)
	}
	return len(b), b, nil
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// headers builds the MMS headers of e.
func headers(e *Email, rcpts []MMSRecipient, opts *ConvertOptions) *pdu.Message {
	m := &pdu.Message{Type: opts.Type, Version: pdu.Version12}
	m.TransactionID = opts.TransactionID
	if m.TransactionID == "" {
		m.TransactionID = NewID()
	}
	// An M-Send.req carries no Message-ID (the MMSC gives one); an
	// M-Retrieve.conf carries one and no Transaction-ID.
	if opts.Type == pdu.TypeRetrieveConf {
		m.MessageID = opts.MessageID
		if m.MessageID == "" {
			m.MessageID = m.TransactionID
		}
		m.TransactionID = ""
	}
	m.Date = e.Date
	if m.Date.IsZero() || m.Date.After(opts.Now.Add(24*time.Hour)) {
		m.Date = opts.Now
	}
	m.Date = m.Date.UTC().Truncate(time.Second)
	from := opts.From
	if from == "" && e.From != nil {
		from = e.From.Address
		if e.From.Name != "" {
			// An RFC 5322 mailbox, in UTF-8 (the PDU's charset), not in
			// RFC 2047 words as net/mail would write it.
			from = quoteName(e.From.Name) + " <" + e.From.Address + ">"
		}
	}
	if from == "" {
		m.From = &pdu.From{Insert: true}
	} else {
		m.From = &pdu.From{Address: pdu.Str(from)}
	}
	for _, r := range rcpts {
		a := pdu.Str(PLMNAddress(r.E164))
		switch r.Kind {
		case KindCc:
			m.Cc = append(m.Cc, a)
		case KindBcc:
			m.Bcc = append(m.Bcc, a)
		default:
			m.To = append(m.To, a)
		}
	}
	if s := strings.TrimSpace(e.Subject); s != "" {
		if opts.SubjectMaxChars > 0 && utf8.RuneCountInString(s) > opts.SubjectMaxChars {
			r := []rune(s)
			s = strings.TrimSpace(string(r[:opts.SubjectMaxChars-1])) + "…"
		}
		m.Subject = pdu.Str(s)
	}
	switch opts.MessageClass {
	case "", pdu.ClassPersonal:
		m.MessageClass = pdu.ClassPersonal
	default:
		m.MessageClass = strings.ToLower(opts.MessageClass)
	}
	switch e.Priority {
	case PriorityHigh:
		m.Priority = pdu.PriorityHigh
	case PriorityLow:
		m.Priority = pdu.PriorityLow
	}
	if opts.DeliveryReport || e.ReturnReceiptTo != "" {
		m.DeliveryReport = pdu.Yes
	}
	if e.ReadReportTo != "" {
		m.ReadReport = pdu.Yes
	}
	if opts.Expiry > 0 && opts.Type == pdu.TypeSendReq {
		m.Expiry = pdu.Relative(opts.Expiry)
	}
	return m
}

func quoteName(n string) string {
	if strings.ContainsAny(n, `"\(),.:;<>@[]`) {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(n) + `"`
	}
	return n
}

// assemble sets m's content: SMIL, then each media item, then the text.
func assemble(m *pdu.Message, media []adapt.Item, text string) {
	hints := make([]NameHint, 0, len(media)+1)
	for _, it := range media {
		hints = append(hints, NameHint{Name: it.Name, ContentType: it.ContentType})
	}
	if text != "" {
		hints = append(hints, NameHint{Name: "text.txt", ContentType: "text/plain"})
	}
	hints = append(hints, NameHint{Name: "presentation.smil", ContentType: "application/smil"})
	names := UniqueNames(hints)
	smilName := names[len(names)-1]
	textName := ""
	if text != "" {
		textName = names[len(media)]
	}
	mediaNames := names[:len(media)]
	types := make([]string, len(media))
	for i, it := range media {
		types[i] = it.ContentType
	}
	smil := BuildSMIL(SlidesFor(mediaNames, types, textName), Layout{})

	parts := make([]pdu.Part, 0, len(media)+2)
	parts = append(parts, pdu.Part{
		ContentType:     pdu.ContentType{Type: "application/smil", Params: []pdu.Param{{Name: "charset", Value: "utf-8"}, {Name: "name", Value: smilName}}},
		ContentID:       ContentID(smilName),
		ContentLocation: smilName,
		Body:            smil,
	})
	for i, it := range media {
		parts = append(parts, pdu.Part{
			ContentType:     pdu.ContentType{Type: it.ContentType, Params: []pdu.Param{{Name: "name", Value: mediaNames[i]}}},
			ContentID:       ContentID(mediaNames[i]),
			ContentLocation: mediaNames[i],
			Body:            it.Data,
		})
	}
	if text != "" {
		parts = append(parts, pdu.Part{
			ContentType:     pdu.ContentType{Type: "text/plain", Params: []pdu.Param{{Name: "charset", Value: "utf-8"}, {Name: "name", Value: textName}}},
			ContentID:       ContentID(textName),
			ContentLocation: textName,
			Body:            []byte(text),
		})
	}
	m.ContentType = pdu.ContentType{Type: "application/vnd.wap.multipart.related", Params: []pdu.Param{
		{Name: "start", Value: ContentID(smilName)}, {Name: "type", Value: "application/smil"}}}
	m.Parts = parts
}

// NewID returns a new random identifier for a transaction or message:
// 24 hex digits (96 bits).
func NewID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
