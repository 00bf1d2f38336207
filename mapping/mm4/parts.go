package mm4

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message/textproto"
	"github.com/mmsrelay/mmsrelay/mapping/internal/mimesplit"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// Limits bound what Parts reads from a message.
type Limits struct {
	MaxParts int   // default 200
	MaxDepth int   // nesting of multiparts, default 8
	MaxBytes int64 // decoded bytes over all parts, default 64 MiB
}

func (l Limits) withDefaults() Limits {
	if l.MaxParts <= 0 {
		l.MaxParts = 200
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 8
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 64 << 20
	}
	return l
}

// ErrTooLarge is returned when a message exceeds its Limits.
var ErrTooLarge = errors.New("mm4: message exceeds the limits")

// Parts returns the multimedia message's content: its top-level content type
// and the leaf parts, multiparts flattened in order, each body decoded from
// its Content-Transfer-Encoding but left in its own charset (the charset
// parameter says which). Content-ID and Content-Location are kept as sent.
func (m *Message) Parts(lim Limits) (pdu.ContentType, []pdu.Part, error) {
	lim = lim.withDefaults()
	top := contentType(m.Header.Get("Content-Type"))
	w := &walker{lim: lim}
	err := w.entity(m.Header, m.Body, 0, false)
	return top, w.parts, err
}

type walker struct {
	lim   Limits
	parts []pdu.Part
	total int64
}

// entity reads one entity; cut says that its body ends where the message
// does, without the boundary line that should close it.
func (w *walker) entity(h textproto.Header, body []byte, depth int, cut bool) error {
	ct := h.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt == "" {
		mt, params = "text/plain", map[string]string{"charset": "us-ascii"}
		if ct != "" {
			if i := strings.IndexByte(ct, ';'); i > 0 {
				mt = strings.ToLower(strings.TrimSpace(ct[:i]))
			} else {
				mt = strings.ToLower(strings.TrimSpace(ct))
			}
		}
	}
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" {
		if depth >= w.lim.MaxDepth {
			return fmt.Errorf("%w: multiparts nested deeper than %d", ErrTooLarge, w.lim.MaxDepth)
		}
		raws, closed := mimesplit.Multipart(body, params["boundary"])
		if len(raws) == 0 && !closed {
			if len(w.parts) > 0 {
				return nil
			}
			return fmt.Errorf("mm4: reading a part: %w", errNoBoundary)
		}
		for i, raw := range raws {
			cut := !closed && i == len(raws)-1
			ph, pb, err := partHeader(raw, cut)
			if err != nil {
				if len(w.parts) > 0 {
					return nil // a broken tail after good parts: keep the good ones
				}
				return fmt.Errorf("mm4: reading a part: %w", err)
			}
			if cut {
				pb = trimCut(pb, body, "--"+params["boundary"])
			}
			if err := w.entity(ph, pb, depth+1, cut); err != nil {
				return err
			}
		}
		return nil
	}
	if len(w.parts) >= w.lim.MaxParts {
		return fmt.Errorf("%w: more than %d parts", ErrTooLarge, w.lim.MaxParts)
	}
	data, err := io.ReadAll(io.LimitReader(decodeCTE(h.Get("Content-Transfer-Encoding"), bytes.NewReader(body)), w.lim.MaxBytes-w.total+1))
	if err == nil && cut && len(data) == 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && len(data) == 0 {
		return fmt.Errorf("mm4: decoding a %s part: %w", mt, err)
	}
	w.total += int64(len(data))
	if w.total > w.lim.MaxBytes {
		return fmt.Errorf("%w: over %d bytes", ErrTooLarge, w.lim.MaxBytes)
	}
	p := pdu.Part{ContentType: contentType(ct), Body: data}
	if p.ContentType.Type == "" {
		p.ContentType.Type = mt
	}
	p.ContentID = strings.TrimSpace(h.Get("Content-ID"))
	p.ContentLocation = strings.TrimSpace(h.Get("Content-Location"))
	if p.ContentType.Param("name") == "" {
		if _, dp, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil {
			if fn := dp["filename"]; fn != "" {
				p.ContentType.Params = append(p.ContentType.Params, pdu.Param{Name: "name", Value: fn})
			}
		}
	}
	w.parts = append(w.parts, p)
	return nil
}

var (
	errNoBoundary  = errors.New("no boundary line")
	errNoHeaderEnd = errors.New("no blank line after the part's header")
)

// partHeader reads the header block of a part, strictly (a malformed
// field, or no blank line after the fields, is an error), and returns its
// body. A part that starts with a blank line has no header fields; a cut
// one (see entity) may end in its header.
func partHeader(raw []byte, cut bool) (textproto.Header, []byte, error) {
	switch {
	case bytes.HasPrefix(raw, []byte("\r\n")):
		return textproto.Header{}, raw[2:], nil
	case bytes.HasPrefix(raw, []byte("\n")):
		return textproto.Header{}, raw[1:], nil
	}
	i, n := mimesplit.HeaderEnd(raw)
	switch {
	case i < 0 && cut:
		i, n = len(raw), 0
	case i < 0:
		return textproto.Header{}, nil, errNoHeaderEnd
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw[:i+n])))
	if err != nil {
		return textproto.Header{}, nil, err
	}
	return h, raw[i+n:], nil
}

// trimCut removes the end of an unterminated last part that may be the
// start of its missing boundary line: from the last line break on, when
// what follows it is a prefix of the line break and delim ("--" and the
// boundary), or is that and "-", "--" or whitespace. The line break is
// CRLF unless the multipart's first boundary line ends in a bare LF.
func trimCut(b, multipart []byte, delim string) []byte {
	nl := "\r\n"
	if i := bytes.Index(multipart, []byte(delim)); i >= 0 {
		if j := bytes.IndexByte(multipart[i:], '\n'); j > 0 && multipart[i+j-1] != '\r' {
			nl = "\n"
		}
	}
	if len(b) < len(delim) && strings.HasPrefix(delim, string(b)) {
		return b[:0] // cut at the very start of the part's body
	}
	i := bytes.LastIndexByte(b, nl[0])
	if i < 0 {
		return b
	}
	tail, nlDelim := string(b[i:]), nl+delim
	if strings.HasPrefix(nlDelim, tail) ||
		strings.HasPrefix(tail, nlDelim) && strings.Trim(tail[len(nlDelim):], "- \t\r") == "" && len(tail)-len(nlDelim) <= 2 {
		return b[:i]
	}
	return b
}

// contentType converts a MIME Content-Type header to the PDU model: a
// lower-case type with its parameters (names lower-cased, values decoded
// from RFC 2231/2047).
func contentType(v string) pdu.ContentType {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return pdu.ContentType{}
	}
	ct := pdu.ContentType{Type: strings.ToLower(mt)}
	// Keep a stable order: the usual ones first, then the rest sorted.
	for _, k := range []string{"charset", "name", "type", "start"} {
		if val, ok := params[k]; ok {
			ct.Params = append(ct.Params, pdu.Param{Name: k, Value: decodeWord(val)})
			delete(params, k)
		}
	}
	delete(params, "boundary")
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		ct.Params = append(ct.Params, pdu.Param{Name: k, Value: decodeWord(params[k])})
	}
	return ct
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func decodeWord(s string) string {
	dec := mime.WordDecoder{CharsetReader: charsetReader}
	if d, err := dec.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

func decodeCTE(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &base64Cleaner{r: bufio.NewReader(r)})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// base64Cleaner drops what base64 decoding must skip: line breaks,
// spaces, and anything else outside the alphabet.
type base64Cleaner struct{ r *bufio.Reader }

func (c *base64Cleaner) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		b, err := c.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '+' || b == '/' || b == '=' {
			p[n] = b
			n++
		}
	}
	return n, nil
}
