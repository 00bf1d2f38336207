package main

// The decode command: a binary MMS PDU (or an MM4 message) in, one JSON
// object out. The JSON is package pdujson's view; this file reads the
// input, picks the decoder and writes the parts for -parts.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"net/textproto"

	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
	"github.com/mmsrelay/mmsrelay/mapping/pdu/pdujson"
)

const decodeHelp = `Decode reads one binary MMS PDU (application/vnd.wap.mms-message, as
OMA-MMS-ENC defines it) from FILE, or from standard input when FILE is "-"
or absent, and prints it as one indented JSON object with these keys, in
this order, each left out when the PDU does not carry it:

  message_type         the PDU type, e.g. "m-send-req"
  transaction_id, mms_version ("1.2"), message_id
  date                 RFC 3339, UTC
  from                 the address as encoded, e.g. "+15551234567/TYPE=PLMN";
                       "" with "from_insert": true for the insert-address token
  to, cc, bcc          arrays of addresses
  subject              UTF-8
  content_type         the message's media type, with content_type_params
  headers              every other header, by its specification name: tokens
                       by name ("Yes", "personal"), times in RFC 3339 or "+Ns"
                       when relative, unknown headers by name or "0xNN" code
  parts                one object per body part: content_type, charset, name,
                       content_id, content_location, size, sha256, text (the
                       UTF-8 text of a text/* part) and, with -parts, file

A body that is not multipart is reported as a single entry of "parts" whose
content_type is the message's content type.

A WSP Push PDU (as an m-notification-ind arrives over SMS or WAP push) is
unwrapped first; error offsets then count from the start of the push.

An MM4 message (the X-Mms-* mail MMSCs exchange) is read into the same
JSON: its headers as the PDU fields they carry, its MIME parts as parts.
Other input that is not a PDU makes decode fail with a line saying so.
`

// maxInput bounds what decode reads: no MMS comes near it.
const maxInput = 256 << 20

func runDecode(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("decode", "[-parts DIR] [-strict] [FILE|-]", decodeHelp)
	partsDir := fs.String("parts", "", "write each part's body to `DIR`/<index>-<name>, creating DIR")
	strict := fs.Bool("strict", false, "reject what lenient decoding accepts (wrong forms, unknown tokens, bad order)")
	if st, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() > 1 {
		return usageError(fs, stderr, "one input file at most, got %d", fs.NArg())
	}
	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	in, err := readInput(name, stdin)
	if err != nil {
		return fail(stderr, "decode", err)
	}
	if name == "-" {
		name = "stdin"
	}
	var m *pdu.Message
	var out *pdujson.Message
	if looksLikeEmail(in) {
		m, out, err = decodeMM4(in)
	} else if m, err = decodeInput(in, pdu.Decoder{Strict: *strict}); err == nil {
		out = pdujson.View(m)
	}
	if err != nil {
		return fail(stderr, "decode", fmt.Errorf("%s: %w", name, err))
	}
	if *partsDir != "" {
		if err := writeParts(*partsDir, m, out.Parts); err != nil {
			return fail(stderr, "decode", err)
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // Content-IDs are "<…>"
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fail(stderr, "decode", err)
	}
	if _, err := stdout.Write(b.Bytes()); err != nil {
		return fail(stderr, "decode", err)
	}
	return exitOK
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("%s: input larger than %d MiB", name, maxInput>>20)
	}
	return b, nil
}

// decodeMM4 reads an MM4 message (3GPP TS 23.140: mail with X-Mms-*
// header fields) into the same JSON: message_type is the X-Mms-Message-Type
// value, mms_version the X-Mms-3GPP-MMS-Version, the MIME parts are the
// parts, and the other X-Mms-* fields (and Sender) are the headers, as they
// came. It returns the parts as a pdu.Message for -parts.
func decodeMM4(in []byte) (*pdu.Message, *pdujson.Message, error) {
	mm, err := mm4.Parse(in)
	if errors.Is(err, mm4.ErrNotMM4) {
		return nil, nil, errors.New("not an MMS PDU, and not an MM4 message either: an email without an X-Mms-Message-Type header")
	}
	if err != nil {
		return nil, nil, err
	}
	top, parts, err := mm.Parts(mm4.Limits{})
	if err != nil {
		return nil, nil, err
	}
	if len(mm.Body) == 0 {
		parts = nil
	}
	v := &pdujson.Message{}
	v.Fields.AddField(pdu.FieldMessageType, mm.Type)
	v.Fields.AddField(pdu.FieldTransactionID, mm.TransactionID)
	v.Fields.AddField(pdu.FieldMMSVersion, mm.Version)
	v.Fields.AddField(pdu.FieldMessageID, mm.MessageID)
	if !mm.Date.IsZero() {
		v.Fields.AddField(pdu.FieldDate, mm.Date)
	}
	v.Fields.AddField(pdu.FieldFrom, mm.From)
	v.Fields.AddField(pdu.FieldTo, mm.To)
	v.Fields.AddField(pdu.FieldCc, mm.Cc)
	v.Fields.AddField(pdu.FieldSubject, mm.Subject)
	if top.Type != "" && len(parts) > 0 {
		v.Fields.AddField(pdu.FieldContentType, top.Type)
		if p := pdujson.Params(top.Params); len(p) > 0 {
			v.Fields.Add(pdu.FieldContentType.JSONName()+"_params", p)
		}
	}
	skip := map[string]bool{"X-Mms-Message-Type": true, "X-Mms-Transaction-Id": true, "X-Mms-Message-Id": true,
		"X-Mms-3gpp-Mms-Version": true}
	var hdrs pdujson.Object
	for fields := mm.Header.Fields(); fields.Next(); {
		k := fields.Key()
		if strings.HasPrefix(strings.ToLower(k), "x-mms-") && !skip[textproto.CanonicalMIMEHeaderKey(k)] {
			hdrs.Add(k, strings.TrimSpace(fields.Value()))
		}
	}
	if mm.Sender != "" {
		hdrs.Add("Sender", mm.Sender)
	}
	if len(hdrs) > 0 {
		v.Fields.Add("headers", hdrs)
	}
	for i := range parts {
		v.Parts = append(v.Parts, pdujson.PartView(&parts[i]))
	}
	return &pdu.Message{ContentType: pdu.ContentType{Type: "multipart/mixed"}, Parts: parts}, v, nil
}

// decodeInput decodes in as an MMS PDU, unwrapping a WSP push first. The
// Message aliases in.
func decodeInput(in []byte, d pdu.Decoder) (*pdu.Message, error) {
	body, shift := in, 0
	if pdu.IsPush(in) {
		ct, b, err := pdu.UnwrapPush(in)
		if err != nil {
			return nil, fmt.Errorf("WSP push: %w", err)
		}
		if ct.Type != "application/vnd.wap.mms-message" {
			return nil, fmt.Errorf("not an MMS PDU: a WSP push of %q", ct.Type)
		}
		body, shift = b, len(in)-len(b)
	}
	m, err := safeDecode(d, body)
	if err == nil {
		return m, nil
	}
	var de *pdu.DecodeError
	if errors.As(err, &de) {
		if pdu.IsNotPDU(err) {
			return nil, de.Err // "not an MMS PDU (first octets …)"
		}
		if shift > 0 {
			e := *de
			e.Offset += shift
			return nil, &e
		}
	}
	return nil, err
}

// safeDecode calls d.Decode and turns a panic, which the codec promises not
// to raise, into an error, so that decode still ends with one line.
func safeDecode(d pdu.Decoder, b []byte) (m *pdu.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("internal error: the PDU decoder panicked (%v); please report it with the input", r)
		}
	}()
	return d.Decode(b)
}

// looksLikeEmail reports whether b starts, after an optional UTF-8 BOM,
// like an RFC 5322 header block: a field name of printable ASCII other than
// ':' and a colon on the first line (RFC 5322 §2.2), or an mbox "From " line.
func looksLikeEmail(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	if bytes.HasPrefix(b, []byte("From ")) {
		return true
	}
	for i, c := range b {
		switch {
		case c == ':':
			return i > 0
		case c < 33 || c > 126:
			return false
		}
		if i >= 76 { // longer than any header field name in practice
			return false
		}
	}
	return false
}

// writeParts writes the body of each part of m into dir as
// <index>-<safe name>, index counting from 1, and records the path in
// parts[i].File.
func writeParts(dir string, m *pdu.Message, parts []pdujson.Part) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bodies := make([][]byte, 0, len(parts))
	if m.ContentType.IsMultipart() {
		for i := range m.Parts {
			bodies = append(bodies, m.Parts[i].Body)
		}
	} else if len(parts) == 1 {
		bodies = append(bodies, m.Body)
	}
	for i, body := range bodies {
		name := strconv.Itoa(i+1) + "-" + safeName(parts[i].Name, parts[i].ContentType)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, body, 0o644); err != nil {
			return err
		}
		parts[i].File = path
	}
	return nil
}

// extensions gives a file name extension for parts that have no name.
var extensions = map[string]string{
	"text/plain": ".txt", "application/smil": ".smil", "text/html": ".html",
	"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/bmp": ".bmp",
	"image/vnd.wap.wbmp": ".wbmp", "audio/amr": ".amr", "audio/mpeg": ".mp3",
	"video/3gpp": ".3gp", "video/mp4": ".mp4", "text/x-vcard": ".vcf", "text/x-vcalendar": ".vcs",
}

// safeName turns a part name into a file name of ASCII letters, digits and
// "._-+", with no path separator, no "..", and no leading dot. A part
// without a usable name is called "part", with an extension for its type.
func safeName(name, contentType string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '_', r == '-', r == '+':
			return r
		}
		return '_'
	}, name)
	for strings.Contains(name, "..") {
		name = strings.ReplaceAll(name, "..", ".")
	}
	name = strings.TrimLeft(name, ".")
	if len(name) > 100 {
		name = name[len(name)-100:]
	}
	if strings.Trim(name, "_.") == "" {
		name = "part" + extensions[contentType]
	}
	return name
}
