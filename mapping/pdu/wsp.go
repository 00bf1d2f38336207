package pdu

// WSP primitive encodings (WAP-230 §8.4.2, OMA-MMS-ENC §7.2). Readers work
// on a cursor over the input and check every length against what remains;
// appenders append the shortest valid encoding to a caller's buffer.

import (
	"errors"
	"fmt"
	"strconv"
)

var (
	errShort           = errors.New("value runs past the end of the data")
	errUintvarOverflow = errors.New("uintvar longer than 5 octets or over 32 bits")
	errNonMinimal      = errors.New("non-minimal encoding")
	errNoNUL           = errors.New("text string without terminating NUL")
	errBadLength       = errors.New("invalid value length octet")
	errBadInteger      = errors.New("not an Integer-value")
	errLongInteger     = errors.New("long integer longer than 8 octets (Long-integer)")
	errBadToken        = errors.New("value is not one the specification defines")
	errHighText        = errors.New("text starting with an octet >= 0x80 without the 0x7F quote")
	errNotPDU          = errors.New("not an MMS PDU")
	errTrailing        = errors.New("unexpected data after the value")
	errDuplicate       = errors.New("header appears more than once")
	errMissing         = errors.New("mandatory header missing")
	errOrder           = errors.New("header out of the required order")
	errTooMany         = errors.New("too many entries")
	errNUL             = errors.New("text contains a NUL octet")
	errCtlText         = errors.New("text starts with a control octet (0x01-0x1F), which reads as a length")
)

// DecodeError reports where and why a PDU could not be decoded.
type DecodeError struct {
	Offset int    // byte offset in the input where the failing value starts
	Field  string // the header or structure being read, e.g. "Subject", "part 2 Content-Type"
	Err    error
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("pdu: at offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("pdu: %s at offset %d: %v", e.Field, e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// reader is a cursor over a PDU.
type reader struct {
	b      []byte
	off    int
	strict bool
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errShort
	}
	return r.b[r.off], nil
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// take returns the next n octets, aliasing the input.
func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, errShort
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s, nil
}

// uintvar reads a WSP Uintvar: 7-bit groups, most significant first, the
// high bit set on every octet but the last, at most 5 octets (32 bits).
// WAP-230 §8.1.2.
func (r *reader) uintvar() (uint64, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == 0 && c == 0x80 && r.strict {
			return 0, errNonMinimal
		}
		v = v<<7 | uint64(c&0x7F)
		if c&0x80 == 0 {
			if v > 0xFFFFFFFF {
				return 0, errUintvarOverflow
			}
			return v, nil
		}
	}
	return 0, errUintvarOverflow
}

// valueLength reads a Value-length: Short-length (0–30), or Length-quote
// (31) followed by a Uintvar; the length must fit in what remains.
//
//	Value-length = Short-length | (Length-quote Length)
func (r *reader) valueLength() (int, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c <= 30:
		n = uint64(c)
	case c == 31:
		if n, err = r.uintvar(); err != nil {
			return 0, err
		}
		if n <= 30 && r.strict {
			return 0, errNonMinimal
		}
	default:
		return 0, errBadLength
	}
	if n > uint64(r.remaining()) {
		return 0, errShort
	}
	return int(n), nil
}

// textBytes reads a Text-string and returns its octets without the quote
// and the NUL, aliasing the input.
//
//	Text-string = [Quote] *TEXT End-of-string ; Quote = <Octet 127>
func (r *reader) textBytes() ([]byte, error) {
	start := r.off
	if start < len(r.b) && r.b[start] == 0x7F {
		start++
	} else if start < len(r.b) && r.b[start] >= 0x80 && r.strict {
		return nil, errHighText
	}
	for i := start; i < len(r.b); i++ {
		if r.b[i] == 0 {
			r.off = i + 1
			return r.b[start:i:i], nil
		}
	}
	return nil, errNoNUL
}

func (r *reader) text() (string, error) {
	b, err := r.textBytes()
	return string(b), err
}

// longInteger reads a Long-integer: Short-length N, then N octets big-endian.
func (r *reader) longInteger() (uint64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	if c > 30 {
		return 0, errBadInteger
	}
	if c == 0 && r.strict {
		return 0, errNonMinimal
	}
	if c > 8 {
		return 0, errLongInteger
	}
	b, err := r.take(int(c))
	if err != nil {
		return 0, err
	}
	if r.strict && len(b) > 1 && b[0] == 0 {
		return 0, errNonMinimal
	}
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v, nil
}

// integer reads an Integer-value: Short-integer or Long-integer.
func (r *reader) integer() (uint64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if c >= 0x80 {
		r.off++
		return uint64(c & 0x7F), nil
	}
	return r.longInteger()
}

// encodedString reads an Encoded-string-value:
//
//	Encoded-string-value = Text-string | Value-length Char-set Text-string
//
// The first octet decides: 0x01–0x1F the long form, anything else text.
func (r *reader) encodedString() (EncodedString, error) {
	c, err := r.peek()
	if err != nil {
		return EncodedString{}, err
	}
	if c == 0 || c > 31 {
		t, err := r.text()
		return EncodedString{Text: t}, err
	}
	n, err := r.valueLength()
	if err != nil {
		return EncodedString{}, err
	}
	sub := reader{b: r.b[:r.off+n], off: r.off, strict: r.strict}
	r.off += n
	cs, err := sub.charset()
	if err != nil {
		return EncodedString{}, err
	}
	if cs == 0 {
		cs = CharsetAny // 0x80 "*" where a charset is due: keep it distinct from none
	}
	if cs.wide() {
		// UTF-16 text holds NUL octets: the value length, not a NUL,
		// tells where it ends. Drop the terminator (one octet, or two).
		t := sub.b[sub.off:]
		if len(t)%2 == 1 && t[len(t)-1] == 0 {
			t = t[:len(t)-1]
		} else if len(t) >= 2 && t[len(t)-1] == 0 && t[len(t)-2] == 0 {
			t = t[:len(t)-2]
		}
		return EncodedString{Charset: cs, Text: string(t)}, nil
	}
	t, err := sub.text()
	if err != nil {
		// Some senders leave out the NUL at the end of the value.
		if r.strict || sub.off > len(sub.b) {
			return EncodedString{}, err
		}
		t, sub.off = string(sub.b[sub.off:]), len(sub.b)
		if len(t) > 0 && t[0] == 0x7F {
			t = t[1:]
		}
	}
	if sub.off != len(sub.b) && r.strict {
		return EncodedString{}, errTrailing
	}
	return EncodedString{Charset: cs, Text: t}, nil
}

// charset reads a Well-known-charset: Any-charset (0x80, returned as 0) or
// an Integer-value MIBenum.
func (r *reader) charset() (Charset, error) {
	v, err := r.integer()
	if err != nil {
		return 0, err
	}
	if v > 0xFFFFFFFE {
		return 0, errBadInteger
	}
	return Charset(v), nil
}

// skipValue reads any header value by its first octet, the rule every MMS
// decoder uses for a header it does not know (OMA-MMS-ENC §7.1): 0x80 and
// up one octet; 0x00–0x1E a Short-length and that many octets; 0x1F a
// Length-quote, Uintvar and that many octets; otherwise a Text-string.
func (r *reader) skipValue() ([]byte, error) {
	start := r.off
	c, err := r.peek()
	if err != nil {
		return nil, err
	}
	switch {
	case c >= 0x80:
		r.off++
	case c <= 31:
		n, err := r.valueLength()
		if err != nil {
			return nil, err
		}
		r.off += n
	default:
		if _, err := r.textBytes(); err != nil {
			return nil, err
		}
	}
	return r.b[start:r.off:r.off], nil
}

// Appenders.

func appendUintvar(b []byte, v uint64) []byte {
	var tmp [10]byte
	i := len(tmp) - 1
	tmp[i] = byte(v & 0x7F)
	for v >>= 7; v > 0; v >>= 7 {
		i--
		tmp[i] = byte(v&0x7F) | 0x80
	}
	return append(b, tmp[i:]...)
}

func uintvarLen(v uint64) int {
	n := 1
	for v >>= 7; v > 0; v >>= 7 {
		n++
	}
	return n
}

func appendValueLength(b []byte, n int) []byte {
	if n <= 30 {
		return append(b, byte(n))
	}
	return appendUintvar(append(b, 31), uint64(n))
}

func valueLengthLen(n int) int {
	if n <= 30 {
		return 1
	}
	return 1 + uintvarLen(uint64(n))
}

func appendLongInteger(b []byte, v uint64) []byte {
	n := 1
	for x := v >> 8; x > 0; x >>= 8 {
		n++
	}
	b = append(b, byte(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func longIntegerLen(v uint64) int {
	n := 1
	for x := v >> 8; x > 0; x >>= 8 {
		n++
	}
	return 1 + n
}

func appendInteger(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v)|0x80)
	}
	return appendLongInteger(b, v)
}

func integerLen(v uint64) int {
	if v < 0x80 {
		return 1
	}
	return longIntegerLen(v)
}

// textLen is the encoded size of a Text-string; for UTF-16 text in an
// Encoded-string-value (written without a quote) it is the same unless the
// first octet is high, a case encodedStringLen corrects.
func textLen(s string) int {
	n := len(s) + 1
	if len(s) > 0 && s[0] >= 0x7F {
		n++
	}
	return n
}

// enc accumulates the PDU and the first error met.
type enc struct {
	b      []byte
	err    error
	partNo int // 1-based index of the part being written, for error labels
}

func (e *enc) fail(field string, err error) {
	if e.err == nil {
		if e.partNo > 0 {
			field = fmt.Sprintf("part %d %s", e.partNo, field)
		}
		e.err = fmt.Errorf("pdu: encoding %s: %w", field, err)
	}
}

func (e *enc) text(field, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			e.fail(field, errNUL)
			return
		}
	}
	// A first octet 0x7F is quoted too: unquoted, a reader takes it for
	// the quote and drops it.
	if len(s) > 0 && s[0] >= 0x7F {
		e.b = append(e.b, 0x7F)
	}
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
}

// textValue writes a Text-string where a reader tells the value's kind by
// its first octet (a header value, a media type, a parameter): a first
// octet 0x01–0x1F would be read as a Value-length, so it has no encoding.
func (e *enc) textValue(field, s string) {
	if len(s) > 0 && s[0] < 0x20 {
		e.fail(field, errCtlText)
		return
	}
	e.text(field, s)
}

func (e *enc) charset(field string, c Charset) {
	if c == CharsetAny {
		e.b = append(e.b, 0x80)
		return
	}
	e.b = appendInteger(e.b, uint64(c))
}

func charsetLen(c Charset) int {
	if c == CharsetAny {
		return 1
	}
	return integerLen(uint64(c))
}

// encodedString writes the plain Text-string form when no charset is
// given, else the Value-length Char-set Text-string form.
func (e *enc) encodedString(field string, s EncodedString) {
	if s.Charset == 0 {
		e.textValue(field, s.Text)
		return
	}
	n := charsetLen(s.Charset) + textLen(s.Text)
	if s.Charset.wide() {
		n = charsetLen(s.Charset) + len(s.Text) + 1
	}
	e.b = appendValueLength(e.b, n)
	e.charset(field, s.Charset)
	if s.Charset.wide() {
		// UTF-16 text may hold NUL octets; the value length delimits it.
		e.b = append(e.b, s.Text...)
		e.b = append(e.b, 0)
		return
	}
	e.text(field, s.Text)
}

func encodedStringLen(s EncodedString) int {
	if s.Charset == 0 {
		return textLen(s.Text)
	}
	n := charsetLen(s.Charset) + textLen(s.Text)
	if s.Charset.wide() {
		n = charsetLen(s.Charset) + len(s.Text) + 1
	}
	return valueLengthLen(n) + n
}

// withLength writes a Value-length followed by what body appends, sizing
// the length after the fact: it reserves room for the longest length,
// then moves the value back over what was not needed.
func (e *enc) withLength(body func()) {
	const reserve = 6 // Length-quote + 5-octet uintvar
	start := len(e.b)
	e.b = append(e.b, make([]byte, reserve)...)
	body()
	n := len(e.b) - start - reserve
	var hdr [reserve]byte
	h := appendValueLength(hdr[:0], n)
	copy(e.b[start:], h)
	copy(e.b[start+len(h):], e.b[start+reserve:])
	e.b = e.b[:len(e.b)-(reserve-len(h))]
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
