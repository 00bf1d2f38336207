// Lenient decoding of MIME fields and bodies.
//
// Design note: every decoder here returns something for any input. Broken
// base64 decodes as far as it goes, bad quoted-printable escapes stay
// literal, unknown charsets fall back to UTF-8 (when the bytes are valid
// UTF-8) or Windows-1252, and invalid bytes become U+FFFD. The callers
// record a note in Email.Notes where something was guessed.

package mapping

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	htmlcharset "golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/charmap"
)

// mediaType parses a Content-Type or Content-Disposition value leniently.
// It returns the lower-case value and its parameters with RFC 2231 and RFC
// 2047 decoded.
func mediaType(v string) (string, map[string]string) {
	if strings.TrimSpace(v) == "" {
		return "", nil
	}
	h := message.Header{}
	h.Set("Content-Type", v)
	t, params, err := h.ContentType()
	if err != nil || params == nil {
		t, params = parseParamsLenient(v)
	}
	// "application/pdf name=x.pdf": a missing semicolon.
	if f := strings.Fields(t); len(f) > 1 {
		t = f[0]
		_, more := parseParamsLenient("x;" + strings.Join(f[1:], " "))
		for k, pv := range more {
			if _, ok := params[k]; !ok {
				params[k] = pv
			}
		}
	}
	for k, pv := range params {
		params[k] = decodeWords(pv)
	}
	return strings.ToLower(strings.TrimSpace(t)), params
}

// parseParamsLenient reads "value; k=v; k2="v2"" where mime.ParseMediaType
// gives up (duplicate or malformed parameters, stray semicolons). Later
// duplicates are ignored and RFC 2231 continuations are joined.
func parseParamsLenient(v string) (string, map[string]string) {
	t, rest, _ := strings.Cut(v, ";")
	params := map[string]string{}
	cont := map[string]map[int]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t\r\n;")
		eq := strings.IndexByte(rest, '=')
		semi := strings.IndexByte(rest, ';')
		if eq < 0 || (semi >= 0 && semi < eq) {
			if semi < 0 {
				break
			}
			rest = rest[semi+1:]
			continue
		}
		k := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t\r\n")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			val, rest = b.String(), rest[min(i+1, len(rest)):]
			if j := strings.IndexByte(rest, ';'); j >= 0 {
				rest = rest[j+1:]
			} else {
				rest = ""
			}
		} else {
			val, rest, _ = strings.Cut(rest, ";")
			val = strings.TrimSpace(val)
		}
		if base, n, ok := strings.Cut(k, "*"); ok {
			idx := 0
			n = strings.TrimSuffix(n, "*")
			fmt.Sscanf(n, "%d", &idx)
			if cont[base] == nil {
				cont[base] = map[int]string{}
			}
			cont[base][idx] = val
			continue
		}
		if _, dup := params[k]; !dup && k != "" {
			params[k] = val
		}
	}
	for base, m := range cont {
		idx := make([]int, 0, len(m))
		for i := range m {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		var b strings.Builder
		for _, i := range idx {
			b.WriteString(m[i])
		}
		s := b.String()
		// charset'lang'percent-encoded
		if cs, r, ok := strings.Cut(s, "'"); ok {
			if _, enc, ok := strings.Cut(r, "'"); ok {
				s = decodeCharset(percentDecode(enc), cs)
			}
		}
		if _, ok := params[base]; !ok {
			params[base] = s
		}
	}
	return strings.TrimSpace(t), params
}

func percentDecode(s string) []byte {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return b
}

// decodeTransfer undoes the Content-Transfer-Encoding of a body, leniently.
func (p *parser) decodeTransfer(h message.Header, body []byte) []byte {
	raw := h.Get("Content-Transfer-Encoding")
	enc := strings.ToLower(strings.TrimSpace(raw))
	enc = strings.TrimRight(enc, "; \t")
	switch {
	case enc == "" || enc == "7bit" || enc == "8bit" || enc == "binary" || enc == "8bits" || enc == "7-bit" || enc == "8-bit":
		return body
	case strings.Contains(enc, "base64"):
		out, bad := decodeBase64Lenient(body)
		if bad {
			p.notef("malformed base64 data, decoded what could be read")
		}
		return out
	case strings.Contains(enc, "quoted-printable") || enc == "qp":
		return decodeQPLenient(body)
	default:
		p.notef("unknown Content-Transfer-Encoding %q, read as is", raw)
		return body
	}
}

// decodeBase64Lenient decodes base64 ignoring any character outside the
// alphabet and stopping at padding; bad reports junk or a truncated tail.
func decodeBase64Lenient(b []byte) ([]byte, bool) {
	// Fast path: well-formed MIME base64, whose line breaks the standard
	// decoder skips by itself.
	out := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	if n, err := base64.StdEncoding.Decode(out, bytes.TrimRight(b, " \t\r\n")); err == nil {
		return out[:n], false
	}
	clean := make([]byte, 0, len(b))
	bad := false
loop:
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			clean = append(clean, c)
		case c == '-':
			clean = append(clean, '+')
		case c == '_':
			clean = append(clean, '/')
		case c == '=':
			// Padding ends the data; a later block (concatenated
			// base64) is rare and dropped.
			if len(bytes.TrimSpace(bytes.TrimLeft(b[i:], "=\r\n\t "))) > 0 {
				bad = true
			}
			break loop
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			bad = true
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
		bad = true
	}
	out = out[:cap(out)]
	if len(out) < len(clean)*3/4+3 {
		out = make([]byte, len(clean)*3/4+3)
	}
	n, err := base64.RawStdEncoding.Decode(out, clean)
	if err != nil {
		bad = true
	}
	return out[:n], bad
}

// decodeQPLenient decodes quoted-printable; malformed escapes are kept
// literally and trailing whitespace before line ends is removed.
func decodeQPLenient(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		line, rest, hasNL := bytes.Cut(b, []byte("\n"))
		b = rest
		line = bytes.TrimRight(line, "\r")
		line = bytes.TrimRight(line, " \t")
		soft := false
		if bytes.HasSuffix(line, []byte("=")) {
			soft = true
			line = line[:len(line)-1]
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			if c == '=' && i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
				out = append(out, unhex(line[i+1])<<4|unhex(line[i+2]))
				i += 2
				continue
			}
			out = append(out, c)
		}
		if hasNL && !soft {
			out = append(out, '\n')
		}
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// decodeText converts text in the named charset to valid UTF-8. An unknown
// or missing charset falls back to UTF-8 when the bytes are valid UTF-8,
// else to Windows-1252 (or, for HTML, to the <meta> charset).
func (p *parser) decodeText(b []byte, cs string, html bool) string {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), `"'`))
	cs = strings.TrimPrefix(cs, "charset=")
	switch cs {
	case "":
		if html && !utf8.Valid(b) {
			if _, name, _ := htmlcharset.DetermineEncoding(b, "text/html"); name != "" {
				return decodeCharset(b, name)
			}
		}
		return fallbackDecode(b)
	case "utf-8", "utf8", "us-ascii", "ascii", "unicode-1-1-utf-7", "x-unknown", "unknown-8bit", "default":
		if cs == "utf-8" || cs == "utf8" {
			return strings.ToValidUTF8(string(b), "\uFFFD")
		}
		return fallbackDecode(b)
	}
	if _, err := charset.Reader(cs, bytes.NewReader(nil)); err != nil {
		p.notef("unknown charset %q", cs)
		return fallbackDecode(b)
	}
	return decodeCharset(b, cs)
}

// decodeCharset decodes b from charset cs into valid UTF-8, never failing.
func decodeCharset(b []byte, cs string) string {
	cs = strings.ToLower(strings.TrimSpace(cs))
	if cs == "" || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" {
		return fallbackDecode(b)
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return fallbackDecode(b)
	}
	out, _ := io.ReadAll(r)
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// fallbackDecode reads bytes of no (or a wrong) charset: ISO-2022-JP if
// its escapes are there, UTF-8 if valid, else Windows-1252, the usual
// unlabeled 8-bit charset.
func fallbackDecode(b []byte) string {
	// Unlabeled ISO-2022-JP is 7-bit, so it passes as UTF-8: look for
	// its escape sequences first.
	if bytes.Contains(b, []byte("\x1b$B")) || bytes.Contains(b, []byte("\x1b$@")) {
		if r, err := charset.Reader("iso-2022-jp", bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(r); err == nil {
				return strings.ToValidUTF8(string(out), "\uFFFD")
			}
		}
	}
	if utf8.Valid(b) {
		return string(b)
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(out)
}

// toUTF8Header makes a raw header value valid UTF-8 (RFC 6532 allows UTF-8;
// anything else is read as Windows-1252).
func toUTF8Header(v string) string {
	if utf8.ValidString(v) {
		return v
	}
	return fallbackDecode([]byte(v))
}

// decodeWords decodes the RFC 2047 encoded-words in a header value,
// leniently: unknown charsets and malformed words fall back as in
// fallbackDecode, and whitespace between adjacent encoded-words is dropped.
func decodeWords(v string) string {
	v = toUTF8Header(v)
	if !strings.Contains(v, "=?") {
		return strings.TrimSpace(v)
	}
	var out strings.Builder
	lastEncoded := false
	pending := "" // whitespace after an encoded word
	for len(v) > 0 {
		i := strings.Index(v, "=?")
		if i < 0 {
			out.WriteString(pending + v)
			break
		}
		dec, n, ok := decodeWord(v[i:])
		if !ok {
			out.WriteString(pending + v[:i+2])
			pending = ""
			v = v[i+2:]
			lastEncoded = false
			continue
		}
		between := v[:i]
		if !(lastEncoded && strings.TrimSpace(between) == "") {
			out.WriteString(pending + between)
		}
		out.WriteString(dec)
		pending = ""
		lastEncoded = true
		v = v[i+n:]
		// Hold the whitespace until we know what follows.
		j := 0
		for j < len(v) && (v[j] == ' ' || v[j] == '\t' || v[j] == '\r' || v[j] == '\n') {
			j++
		}
		pending, v = v[:j], v[j:]
	}
	return strings.TrimSpace(out.String())
}

// decodeWord decodes one "=?charset?enc?text?=" at the start of s and
// returns its text and length.
func decodeWord(s string) (string, int, bool) {
	parts := strings.SplitN(s[2:], "?", 4)
	if len(parts) < 4 || !strings.HasPrefix(parts[3], "=") {
		return "", 0, false
	}
	cs, enc, text := parts[0], strings.ToLower(parts[1]), parts[2]
	if cs == "" || strings.ContainsAny(cs, " \t") || strings.ContainsAny(text, " \t") {
		return "", 0, false
	}
	if i := strings.IndexByte(cs, '*'); i >= 0 { // RFC 2231 language
		cs = cs[:i]
	}
	n := 2 + len(parts[0]) + 1 + len(parts[1]) + 1 + len(text) + 2
	var b []byte
	switch enc {
	case "b":
		b, _ = decodeBase64Lenient([]byte(text))
	case "q":
		for i := 0; i < len(text); i++ {
			c := text[i]
			switch {
			case c == '_':
				b = append(b, ' ')
			case c == '=' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]):
				b = append(b, unhex(text[i+1])<<4|unhex(text[i+2]))
				i += 2
			default:
				b = append(b, c)
			}
		}
	default:
		return "", 0, false
	}
	return decodeCharset(b, cs), n, true
}

// unflow joins the soft line breaks of format=flowed text (RFC 3676): a
// line ending in a space continues on the next line. Quoted lines and the
// signature separator are left alone; space-stuffing is undone.
func unflow(s string, delsp bool) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var b strings.Builder
	for i, l := range lines {
		l = strings.TrimPrefix(l, " ") // space-stuffing
		soft := strings.HasSuffix(l, " ") && l != "-- " && !strings.HasPrefix(l, ">") &&
			i+1 < len(lines) && !strings.HasPrefix(lines[i+1], ">")
		if soft && delsp {
			l = l[:len(l)-1]
		}
		b.WriteString(l)
		if !soft && i+1 < len(lines) {
			b.WriteByte('\n')
		}
	}
	return b.String()
}
