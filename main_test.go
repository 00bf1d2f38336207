package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
)

// runCmd runs the program with args and stdin, returning the exit status,
// stdout and stderr.
func runCmd(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, bytes.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// corpusFile returns the path of a file below shared/corpus/pdu.
func corpusFile(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(testcorpus.Dir(t, "pdu"), filepath.FromSlash(name))
}

// decodeJSON runs "decode args…", requires success, and returns the JSON
// object and the raw output.
func decodeJSON(t *testing.T, args ...string) (map[string]any, string) {
	t.Helper()
	code, out, errs := runCmd(t, nil, append([]string{"decode"}, args...)...)
	if code != 0 || errs != "" {
		t.Fatalf("run(decode %v) = %d, stderr %q; want 0 and no stderr", args, code, errs)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("run(decode %v) printed invalid JSON: %v\n%s", args, err, out)
	}
	return m, out
}

// lookup follows a dotted path ("parts.1.size") through JSON objects and
// arrays; ok is false when a step is missing.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// oneErrorLine checks that stderr is exactly one line containing each of
// want.
func oneErrorLine(t *testing.T, what, stderr string, want ...string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("%s: stderr = %q, want exactly one line", what, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr = %q, want it to contain %q", what, stderr, w)
		}
	}
}

// The expected values were checked against Wireshark's MMSE dissector
// (shared/tools/pdu-dissect); where Wireshark shows raw octets for a
// charset-encoded string, the octets were decoded by hand.
func TestDecodeCorpus(t *testing.T) {
	tests := []struct {
		file string
		want map[string]any // dotted path → value; nil value: must be absent
	}{
		{"nuntium/m-notification.ind_success", map[string]any{ // a WSP push
			"message_type":                   "m-notification-ind",
			"transaction_id":                 "m04BKksim05@mms.personal.com.ar",
			"mms_version":                    "1.0",
			"from":                           "+543515924906/TYPE=PLMN",
			"headers.X-Mms-Message-Class":    "personal",
			"headers.X-Mms-Message-Size":     29696.0,
			"headers.X-Mms-Expiry":           "+172799s",
			"headers.X-Mms-Content-Location": "http://localhost:9191/mms",
			"content_type":                   nil,
			"parts":                          nil,
		}},
		{"mmsd/sr-mms-mixed.mms", map[string]any{
			"message_type":             "m-send-req",
			"transaction_id":           "000000000001",
			"from":                     "",
			"from_insert":              true,
			"to.0":                     "+33612345678/TYPE=PLMN",
			"content_type":             "application/vnd.wap.multipart.mixed",
			"parts.0.content_type":     "text/plain",
			"parts.0.charset":          "utf-8",
			"parts.0.content_id":       "<Generic_Text.txt>",
			"parts.0.size":             15.0,
			"parts.0.text":             "\ufeffHello World\n", // the body starts with a BOM
			"parts.0.sha256":           "692f130598467692309dd563ccbef760e1598bb42cc1d9a8d50db0bd52dac29e",
			"parts.1":                  nil,
			"headers":                  nil,
			"content_type_params":      nil,
			"parts.0.name":             nil,
			"parts.0.content_location": nil,
		}},
		{"python-messaging/SIMPLE.MMS", map[string]any{
			"message_type":             "m-retrieve-conf",
			"date":                     "2002-12-20T21:26:56Z",
			"subject":                  "Simple message",
			"content_type":             "application/vnd.wap.multipart.related",
			"parts.0.content_type":     "text/plain",
			"parts.0.name":             "3E03099E.txt",
			"parts.0.content_location": "3E03099E.txt",
			"parts.0.content_id":       "<3E03099E.txt>",
			"parts.0.size":             58.0,
			"parts.0.text":             "This is a simple MMS message with a single text body part.",
		}},
		{"python-messaging/iPhone.mms", map[string]any{
			"message_type":              "m-send-req",
			"transaction_id":            "1262957356-3",
			"mms_version":               "1.2",
			"from_insert":               true,
			"to.0":                      "1337/TYPE=PLMN",
			"content_type_params.type":  "application/smil",
			"content_type_params.start": "0.smil",
			"parts.0.content_type":      "application/smil",
			"parts.0.content_id":        "0.smil",
			"parts.0.size":              300.0,
			"parts.0.text":              nil, // not text/*
			"parts.1.content_type":      "image/jpeg",
			"parts.1.name":              "IMG_6807.jpg",
			"parts.1.size":              213580.0,
			"parts.1.sha256":            "1aa2f4f86d294dbf47fa5083ec1eab62e2129680ad0d8d7e612ae42b97dcad57",
		}},
		{"mms-engine/test_mms_codec__m-retrieve_9.conf", map[string]any{
			"subject":                       "의료보조금 지급 안내", // UTF-8 (charset 106)
			"from":                          "0444444444",
			"date":                          "2014-05-12T07:30:52Z",
			"headers.X-Mms-Message-Class":   "informational",
			"headers.X-Mms-Priority":        "Normal",
			"headers.X-Mms-Delivery-Report": "Yes",
			"headers.X-Mms-Retrieve-Status": "Ok",
		}},
		{"python-messaging/27d0a048cd79555de05283a22372b0eb.mms", map[string]any{
			"subject": "Angående art-tillhörighet",
		}},
		{"mms-engine/test_mms_codec__m-read-orig.ind", map[string]any{
			"message_type":              "m-read-orig-ind",
			"mms_version":               "1.1",
			"message_id":                "BH24CBJJA40W1",
			"date":                      "2013-12-20T17:34:15Z",
			"from":                      "+358500000000/TYPE=PLMN",
			"to.0":                      "+358440000001/TYPE=PLMN",
			"headers.X-Mms-Read-Status": "Read",
		}},
		{"mms-engine/test_send__ServiceDenied__m-send.conf", map[string]any{
			"message_type":                  "m-send-conf",
			"transaction_id":                "463",
			"message_id":                    "021512014610000000005",
			"headers.X-Mms-Response-Status": "Error-permanent-service-denied",
			"headers.X-Mms-Response-Text":   "Unable to send",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m, _ := decodeJSON(t, corpusFile(t, tc.file))
			for path, want := range tc.want {
				got, ok := lookup(m, path)
				if want == nil {
					if ok {
						t.Errorf("decode %s: %s = %#v, want absent", tc.file, path, got)
					}
					continue
				}
				if !ok || got != want {
					t.Errorf("decode %s: %s = %#v, want %#v", tc.file, path, got, want)
				}
			}
		})
	}
}

func TestDecodeKeyOrder(t *testing.T) {
	_, out := decodeJSON(t, corpusFile(t, "mms-engine/test_retrieve__Success3__m-retrieve.conf"))
	keys := []string{`"message_type"`, `"transaction_id"`, `"mms_version"`, `"message_id"`, `"date"`,
		`"from"`, `"to"`, `"subject"`, `"content_type"`, `"content_type_params"`, `"headers"`, `"parts"`}
	last := -1
	for _, k := range keys {
		i := strings.Index(out, k)
		if i <= last {
			t.Fatalf("decode output: key %s at %d, after the previous key at %d; want the documented order\n%s", k, i, last, out)
		}
		last = i
	}
}

// TestDecodeAllCorpus decodes every corpus file: each is a PDU (exit 0,
// JSON with a message type) or one of the garbage files.
func TestDecodeAllCorpus(t *testing.T) {
	for _, f := range testcorpus.Files(t, "pdu") {
		rel, _ := filepath.Rel(testcorpus.Dir(t, "pdu"), f)
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			code, out, errs := runCmd(t, nil, "decode", f)
			if strings.Contains(rel, "garbage") {
				if code != 1 {
					t.Errorf("run(decode %s) = %d, want 1", rel, code)
				}
				oneErrorLine(t, rel, errs, "not an MMS PDU")
				return
			}
			if code != 0 {
				t.Fatalf("run(decode %s) = %d, stderr %q; want 0", rel, code, errs)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("run(decode %s): invalid JSON: %v", rel, err)
			}
			if s, _ := m["message_type"].(string); !strings.HasPrefix(s, "m-") {
				t.Errorf("run(decode %s): message_type = %v, want m-…", rel, m["message_type"])
			}
		})
	}
}

func TestDecodeTruncated(t *testing.T) {
	// Cut in half, these end inside a header or a part that is not the
	// last one (lenient decoding accepts a short last part).
	for _, name := range []string{
		"mms-engine/test_mms_codec__m-notification_1.ind",
		"mms-engine/test_mms_codec__m-read-rec.ind",
		"python-messaging/SIMPLE.MMS",
		"python-messaging/BTMMS.MMS",
		"python-messaging/NOWMMS.MMS",
		"nuntium/m-notification.ind_success", // inside the pushed PDU
	} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(corpusFile(t, name))
			if err != nil {
				t.Fatal(err)
			}
			code, out, errs := runCmd(t, b[:len(b)/2], "decode")
			if code != 1 || out != "" {
				t.Errorf("run(decode half of %s) = %d, stdout %q; want 1 and nothing", name, code, out)
			}
			oneErrorLine(t, name, errs, "offset", "stdin")
		})
	}
	// With -strict, a short last part is an error too.
	b, err := os.ReadFile(corpusFile(t, "python-messaging/iPhone.mms"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd(t, b[:len(b)/2], "decode", "-strict", "-")
	if code != 1 {
		t.Errorf("run(decode -strict half of iPhone.mms) = %d, want 1", code)
	}
	oneErrorLine(t, "-strict half of iPhone.mms", errs, "offset")
}

func TestDecodePushOffset(t *testing.T) {
	// The pushed PDU starts at offset 41 of the file (2 + 1 + 38 octets of
	// push headers); its From value (offset 38 in the PDU) is cut.
	b, err := os.ReadFile(corpusFile(t, "nuntium/m-notification.ind_success"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd(t, b[:100], "decode")
	if code != 1 {
		t.Errorf("run(decode cut push) = %d, want 1", code)
	}
	oneErrorLine(t, "cut push", errs, "From at offset 79")
}

func TestDecodeNotPDU(t *testing.T) {
	random := make([]byte, 512)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	random[0], random[1] = 0x42, 0xFF // neither a PDU, a push nor a header line
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"html", []byte("<!DOCTYPE html>\n<html><head><title>MMS</title></head><body>hi</body></html>\n")},
		{"text", []byte("This is not a valid m-Retrieve.conf PDU\n")},
		{"random", random},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(t, tc.in, "decode", "-")
			if code != 1 || out != "" {
				t.Errorf("run(decode %s) = %d, stdout %q; want 1 and nothing", tc.name, code, out)
			}
			oneErrorLine(t, tc.name, errs, "not an MMS PDU")
		})
	}
	f := corpusFile(t, "mms-engine/test_retrieve__GarbagePush__garbage")
	code, _, errs := runCmd(t, nil, "decode", f)
	if code != 1 {
		t.Errorf("run(decode %s) = %d, want 1", f, code)
	}
	oneErrorLine(t, f, errs, "not an MMS PDU", f)
}

func TestDecodeEmail(t *testing.T) {
	// Mail that is not MM4 is refused, saying why.
	for _, in := range []string{
		"From: alice@example.com\r\nTo: +15551234567@mms.example.net\r\nSubject: hi\r\n\r\nHello\r\n",
		"From alice@example.com Tue Nov 25 09:20:00 2026\nSubject: mbox\n\nbody\n",
	} {
		code, out, errs := runCmd(t, []byte(in), "decode")
		if code != 1 || out != "" {
			t.Errorf("run(decode %q) = %d, stdout %q; want 1 and nothing", in[:12], code, out)
		}
		oneErrorLine(t, "email", errs, "not an MM4 message")
	}
	// An MM4 message, whatever its header case or byte order mark.
	code, out, errs := runCmd(t, []byte("\uFEFFX-MMS-Message-Type: MM4_forward.REQ\nX-Mms-Transaction-Id: \"t1\"\nMIME-Version: 1.0\n\nbody\n"), "decode")
	if code != 0 || !strings.Contains(out, `"message_type": "MM4_forward.REQ"`) || !strings.Contains(out, `"transaction_id": "t1"`) ||
		!strings.Contains(out, `"text": "body\n"`) {
		t.Errorf("MM4 decode = %d %q %q", code, out, errs)
	}
}

// TestDecodeMM4Corpus decodes the real MM4 messages of the corpus, whatever
// their header case, byte order mark or trailing SMTP residue.
func TestDecodeMM4Corpus(t *testing.T) {
	files := testcorpus.Files(t, "mm4")
	for _, f := range files {
		code, out, errs := runCmd(t, nil, "decode", f)
		if code != 0 {
			t.Errorf("decode %s = %d: %s", filepath.Base(f), code, errs)
			continue
		}
		var d struct {
			MessageType   string            `json:"message_type"`
			TransactionID string            `json:"transaction_id"`
			Headers       map[string]any    `json:"headers"`
			Parts         []json.RawMessage `json:"parts"`
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(d.MessageType, "MM4_") || d.TransactionID == "" || strings.Contains(d.TransactionID, `"`) {
			t.Errorf("%s: %+v", filepath.Base(f), d)
		}
		if d.MessageType == "MM4_forward.REQ" && len(d.Parts) == 0 {
			t.Errorf("%s: no parts", filepath.Base(f))
		}
		if d.MessageType == "MM4_forward.RES" && (len(d.Parts) != 0 || d.Headers["X-Mms-Request-Status-Code"] != "Ok") {
			t.Errorf("%s: .RES = %s", filepath.Base(f), out)
		}
	}
	// The values of one, read off the message by hand.
	_, out, _ := runCmd(t, nil, "decode", filepath.Join(testcorpus.Dir(t, "mm4"), "DavidTzur1-MMS", "mm4.eml"))
	for _, want := range []string{`"message_id": "k4tr70p31rzs96@w.mms.hotmobile.co.il"`, `"from": "+972500000029/TYPE=PLMN"`,
		`"content_type": "multipart/related"`, `"name": "599482402.jpg"`, `"size": 862259`, `"X-Mms-Ack-Request": "Yes"`} {
		if !strings.Contains(out, want) {
			t.Errorf("mm4.eml JSON lacks %s", want)
		}
	}
}

func TestDecodeStdinAndFileAgree(t *testing.T) {
	f := corpusFile(t, "mmsd/rc-mms-1-3-con-210.mms")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	_, fromFile := decodeJSON(t, f)
	for _, args := range [][]string{{"decode"}, {"decode", "-"}} {
		code, out, errs := runCmd(t, b, args...)
		if code != 0 || out != fromFile {
			t.Errorf("run(%v) with the file on stdin = %d %q, want 0 and the same JSON as from the file", args, code, errs)
		}
	}
}

func TestDecodeParts(t *testing.T) {
	for _, name := range []string{"python-messaging/iPhone.mms", "mms-engine/test_retrieve__Success3__m-retrieve.conf"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new", "parts") // created by decode
			m, _ := decodeJSON(t, "-parts", dir, corpusFile(t, name))
			parts, _ := m["parts"].([]any)
			if len(parts) < 2 {
				t.Fatalf("decode %s: %d parts, want at least 2", name, len(parts))
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(parts) {
				t.Errorf("decode -parts %s wrote %d files, want %d", name, len(entries), len(parts))
			}
			for i, p := range parts {
				p := p.(map[string]any)
				file, _ := p["file"].(string)
				if filepath.Dir(file) != dir || !strings.HasPrefix(filepath.Base(file), strconv.Itoa(i+1)+"-") {
					t.Errorf("part %d file = %q, want %s/%d-…", i+1, file, dir, i+1)
				}
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(b)
				if got := hex.EncodeToString(sum[:]); got != p["sha256"] {
					t.Errorf("part %d: sha256(%s) = %s, want %v as in the JSON", i+1, file, got, p["sha256"])
				}
				if float64(len(b)) != p["size"] {
					t.Errorf("part %d: size of %s = %d, want %v", i+1, file, len(b), p["size"])
				}
			}
		})
	}
}

func TestDecodePartsSinglePart(t *testing.T) {
	// A PDU whose body is not multipart: m-send-req, text/plain "hi".
	in := []byte("\x8c\x80\x98t1\x00\x8d\x92\x89\x01\x81\x97+1555/TYPE=PLMN\x00\x84\x83hi")
	dir := t.TempDir()
	m, _ := decodeJSON(t, "-parts", dir, writeTemp(t, in))
	want := map[string]any{"content_type": "text/plain", "parts.0.content_type": "text/plain",
		"parts.0.size": 2.0, "parts.0.text": "hi", "parts.0.file": filepath.Join(dir, "1-part.txt")}
	for path, w := range want {
		if got, _ := lookup(m, path); got != w {
			t.Errorf("decode single-part: %s = %#v, want %#v", path, got, w)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "1-part.txt")); err != nil || string(b) != "hi" {
		t.Errorf("1-part.txt = %q, %v; want \"hi\"", b, err)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "in.mms")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSafeName(t *testing.T) {
	for _, tc := range []struct{ name, ct, want string }{
		{"IMG_6807.jpg", "image/jpeg", "IMG_6807.jpg"},
		{"../../etc/passwd", "text/plain", "passwd"},
		{`C:\x\evil.exe`, "", "evil.exe"},
		{"..", "text/plain", "part.txt"},
		{"...hidden", "", "hidden"},
		{"a..b", "", "a.b"},
		{"Ünïcödé name.txt", "", "_n_c_d__name.txt"},
		{"", "image/jpeg", "part.jpg"},
		{"", "application/x-unknown", "part"},
		{"/", "", "part"},
		{strings.Repeat("x", 300) + ".jpg", "", strings.Repeat("x", 96) + ".jpg"},
	} {
		if got := safeName(tc.name, tc.ct); got != tc.want {
			t.Errorf("safeName(%q, %q) = %q, want %q", tc.name, tc.ct, got, tc.want)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		stdout   string // substring wanted on stdout
		stderr   string // substring wanted on stderr
		noStdout bool
	}{
		{args: nil, code: 2, stderr: "decode", noStdout: true},
		{args: []string{"-h"}, code: 0, stdout: "version"},
		{args: []string{"help"}, code: 0, stdout: "decode"},
		{args: []string{"help", "decode"}, code: 0, stdout: "-parts"},
		{args: []string{"decode", "-h"}, code: 0, stdout: "single entry"},
		{args: []string{"version", "-h"}, code: 0, stdout: "Usage: mmsrelay version"},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`, noStdout: true},
		{args: []string{"decode", "-nosuchflag"}, code: 2, stderr: "-nosuchflag", noStdout: true},
		{args: []string{"decode", "a", "b"}, code: 2, stderr: "one input file at most", noStdout: true},
		{args: []string{"version", "extra"}, code: 2, stderr: "unexpected argument", noStdout: true},
		{args: []string{"decode", "/nonexistent/file.mms"}, code: 1, stderr: "no such file", noStdout: true},
	} {
		code, out, errs := runCmd(t, nil, tc.args...)
		if code != tc.code {
			t.Errorf("run(%q) = %d, want %d (stderr %q)", tc.args, code, tc.code, errs)
		}
		if !strings.Contains(out, tc.stdout) || (tc.noStdout && out != "") {
			t.Errorf("run(%q) stdout = %q, want it to contain %q", tc.args, out, tc.stdout)
		}
		if !strings.Contains(errs, tc.stderr) {
			t.Errorf("run(%q) stderr = %q, want it to contain %q", tc.args, errs, tc.stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "mmsrelay ") || len(strings.TrimSpace(out)) <= len("mmsrelay") {
		t.Errorf("run(version) = %d %q, want 0 and \"mmsrelay VERSION\"", code, out)
	}
}
