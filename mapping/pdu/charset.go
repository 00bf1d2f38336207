package pdu

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/ianaindex"
)

// Charset is a character set by its IANA MIBenum, as WSP's
// Well-known-charset carries it. Zero means none was given.
type Charset uint32

// Character sets MMS uses most.
const (
	CharsetASCII   Charset = 3
	CharsetLatin1  Charset = 4
	CharsetUTF8    Charset = 106
	CharsetUCS2    Charset = 1000
	CharsetUTF16BE Charset = 1013
	CharsetUTF16LE Charset = 1014
	CharsetUTF16   Charset = 1015
	CharsetAny     Charset = 0xFFFFFFFF // "*" (Any-charset, 0x80) in a charset parameter
)

// charsetNames maps MIBenums to IANA names (lower case), after the IANA
// character set registry.
var charsetNames = map[Charset]string{
	3: "us-ascii", 4: "iso-8859-1", 5: "iso-8859-2", 6: "iso-8859-3", 7: "iso-8859-4",
	8: "iso-8859-5", 9: "iso-8859-6", 10: "iso-8859-7", 11: "iso-8859-8", 12: "iso-8859-9",
	13: "iso-8859-10", 17: "shift_jis", 18: "euc-jp", 36: "ks_c_5601-1987", 37: "iso-2022-kr",
	38: "euc-kr", 39: "iso-2022-jp", 40: "iso-2022-jp-2", 106: "utf-8", 109: "iso-8859-13",
	110: "iso-8859-14", 111: "iso-8859-15", 112: "iso-8859-16", 113: "gbk", 114: "gb18030",
	1000: "iso-10646-ucs-2", 1013: "utf-16be", 1014: "utf-16le", 1015: "utf-16",
	2025: "gb2312", 2026: "big5", 2084: "koi8-r", 2088: "koi8-u", 2109: "windows-874",
	2250: "windows-1250", 2251: "windows-1251", 2252: "windows-1252", 2253: "windows-1253",
	2254: "windows-1254", 2255: "windows-1255", 2256: "windows-1256", 2257: "windows-1257",
	2258: "windows-1258", 2259: "tis-620",
}

var charsetByName = func() map[string]Charset {
	m := make(map[string]Charset, len(charsetNames)+8)
	for k, v := range charsetNames {
		m[v] = k
	}
	for alias, c := range map[string]Charset{"ascii": 3, "latin1": 4, "utf8": 106, "ucs-2": 1000,
		"ucs2": 1000, "iso_8859-1": 4, "shift-jis": 17, "sjis": 17, "cp1252": 2252} {
		m[alias] = c
	}
	return m
}()

// wide reports whether c is a UTF-16 form, whose text holds NUL octets.
func (c Charset) wide() bool {
	return c == CharsetUCS2 || c == CharsetUTF16 || c == CharsetUTF16BE || c == CharsetUTF16LE
}

// Name returns the IANA name in lower case ("utf-8"), "*" for CharsetAny,
// the MIBenum in decimal when the name is not known, or "" for none.
func (c Charset) Name() string {
	switch c {
	case 0:
		return ""
	case CharsetAny:
		return "*"
	}
	if n, ok := charsetNames[c]; ok {
		return n
	}
	return strconv.FormatUint(uint64(c), 10)
}

// String returns c.Name().
func (c Charset) String() string { return c.Name() }

// CharsetByName returns the charset named name (any case; a decimal MIBenum
// and "*" are accepted too). The empty name gives 0, true.
func CharsetByName(name string) (Charset, bool) {
	if name == "" {
		return 0, true
	}
	if name == "*" {
		return CharsetAny, true
	}
	if c, ok := charsetByName[strings.ToLower(name)]; ok {
		return c, true
	}
	if n, err := strconv.ParseUint(name, 10, 32); err == nil && n > 0 {
		return Charset(n), true
	}
	return 0, false
}

// Decode converts b from c to UTF-8. Invalid sequences become U+FFFD, never
// an error. Without a charset (0), and for us-ascii text that is not ASCII,
// b is taken as UTF-8 when it is valid UTF-8 and as ISO-8859-1 otherwise, as
// handsets send both. An unknown charset is treated like none.
func (c Charset) Decode(b []byte) string {
	switch c {
	case CharsetUTF8:
		return strings.ToValidUTF8(string(b), "\uFFFD")
	case 0, CharsetASCII, CharsetAny:
		if utf8.Valid(b) {
			return string(b)
		}
		return latin1(b)
	case CharsetLatin1:
		return latin1(b)
	case CharsetUCS2, CharsetUTF16, CharsetUTF16BE:
		return utf16Decode(b, true, c != CharsetUTF16BE)
	case CharsetUTF16LE:
		return utf16Decode(b, false, false)
	}
	name, ok := charsetNames[c]
	if !ok {
		return Charset(0).Decode(b)
	}
	enc, err := ianaindex.IANA.Encoding(name)
	if err != nil || enc == nil {
		return Charset(0).Decode(b)
	}
	s, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return Charset(0).Decode(b)
	}
	return strings.ToValidUTF8(string(s), "\uFFFD")
}

func latin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/2)
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// utf16Decode decodes UTF-16 (or UCS-2) text; bom says whether a leading
// byte order mark may override the default order.
func utf16Decode(b []byte, bigEndian, bom bool) string {
	if bom && len(b) >= 2 {
		switch {
		case b[0] == 0xFE && b[1] == 0xFF:
			b, bigEndian = b[2:], true
		case b[0] == 0xFF && b[1] == 0xFE:
			b, bigEndian = b[2:], false
		}
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		if bigEndian {
			u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
		} else {
			u = append(u, uint16(b[i+1])<<8|uint16(b[i]))
		}
	}
	s := string(utf16.Decode(u))
	// A UCS-2 string is often NUL-padded by handsets.
	s = strings.TrimRight(s, "\x00")
	if len(b)%2 == 1 {
		s += "\uFFFD"
	}
	return s
}
