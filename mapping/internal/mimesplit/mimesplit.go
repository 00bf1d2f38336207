// Package mimesplit cuts MIME entities apart leniently, over the bytes of
// a message in memory: a header block from its body, and a multipart body
// into its parts. It is the one splitter of the email reader and the MM3
// reader (package mapping) and the MM4 reader (package mapping/mm4).
//
// It accepts what real mail holds: LF as well as CRLF line ends, a
// missing header block, whitespace after boundary lines and a missing
// close delimiter. It only cuts: parsing the header fields, and how
// strictly, is the caller's. Every result is a subslice of the input.
package mimesplit

import "bytes"

// HeaderEnd returns the index of the blank line that ends the header block
// in b and the length of the line breaks to skip after it (1 for LF, 2 for
// CRLF), or -1 and 0 when b has no blank line. The header block is
// b[:i] and the body b[i+n:].
func HeaderEnd(b []byte) (i, n int) {
	lf := bytes.Index(b, []byte("\n\n"))
	crlf := bytes.Index(b, []byte("\n\r\n"))
	switch {
	case lf < 0 && crlf < 0:
		return -1, 0
	case crlf >= 0 && (lf < 0 || crlf < lf):
		return crlf + 1, 2
	default:
		return lf + 1, 1
	}
}

// Entity splits an entity into its raw header block and its body. An
// entity that starts with a blank line has no header; one without a blank
// line is a header only when its first line looks like a header field,
// else a body only.
func Entity(b []byte) (header, body []byte) {
	switch {
	case bytes.HasPrefix(b, []byte("\r\n")):
		return nil, b[2:]
	case bytes.HasPrefix(b, []byte("\n")):
		return nil, b[1:]
	}
	i, n := HeaderEnd(b)
	if i < 0 {
		if LooksLikeHeader(b) {
			return b, nil
		}
		return nil, b
	}
	return b[:i], b[i+n:]
}

// LooksLikeHeader reports whether the first line of b is a header field:
// a valid field name and a colon.
func LooksLikeHeader(b []byte) bool {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	k, _, ok := bytes.Cut(line, []byte(":"))
	return ok && len(k) > 0 && ValidKey(k)
}

// ValidKey reports whether k is a header field name: printable ASCII
// without spaces or colons (RFC 5322 §2.2).
func ValidKey(k []byte) bool {
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return len(k) > 0
}

// Multipart splits a multipart body at its boundary lines and returns the
// raw parts (header and body each), without the line break before each
// boundary line. It accepts LF line ends, trailing whitespace after
// boundaries, and a missing close delimiter: closed is then false and the
// last part is what follows the last boundary line, however little (it
// may be empty; there is none when that line ends the body without a line
// break). It returns nil parts when no boundary line is found, and an
// empty, non-nil list when one is found but no part follows it.
func Multipart(body []byte, boundary string) (parts [][]byte, closed bool) {
	delim := []byte("--" + boundary)
	start := -1 // start of the current part
	pos := 0
	for pos <= len(body) && !closed {
		end := bytes.IndexByte(body[pos:], '\n')
		lineEnd := len(body)
		next := len(body) + 1
		if end >= 0 {
			lineEnd = pos + end
			next = lineEnd + 1
		}
		line := bytes.TrimRight(body[pos:lineEnd], " \t\r")
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			final := bytes.Equal(rest, []byte("--"))
			if len(rest) == 0 || final {
				if start >= 0 {
					// The line break before the delimiter belongs to it.
					pe := pos
					if pe > start && body[pe-1] == '\n' {
						pe--
						if pe > start && body[pe-1] == '\r' {
							pe--
						}
					}
					parts = append(parts, body[start:pe])
				}
				if final {
					closed = true
				}
				start = next // past the end when the line has no line break
			}
		}
		pos = next
	}
	if !closed && start >= 0 && start <= len(body) {
		parts = append(parts, body[start:])
	}
	if parts == nil && start >= 0 {
		parts = [][]byte{} // a boundary line, but no part: not "none found"
	}
	return parts, closed
}
