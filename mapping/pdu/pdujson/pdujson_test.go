package pdujson

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus-views.sha256 from the current view")

// encode writes v as `mmsrelay decode` does: indented, HTML not escaped.
func encode(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b.String()
}

// decode decodes a corpus file leniently, unwrapping a WSP push first.
func decode(b []byte) (*pdu.Message, error) {
	if pdu.IsPush(b) {
		ct, body, err := pdu.UnwrapPush(b)
		if err != nil {
			return nil, err
		}
		if ct.Type != "application/vnd.wap.mms-message" {
			return nil, fmt.Errorf("a WSP push of %q", ct.Type)
		}
		b = body
	}
	return pdu.Decode(b)
}

// TestCorpus checks the view of every PDU of the shared corpus against the
// digests of the JSON that the decode command printed before the view
// moved here: the output is byte for byte the same.
func TestCorpus(t *testing.T) {
	dir := testcorpus.Dir(t, "pdu")
	const golden = "testdata/corpus-views.sha256"
	raw, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var header []string
	want := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			header = append(header, line)
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("%s: bad line %q", golden, line)
		}
		want[strings.TrimSpace(name)] = sum
	}
	got := map[string]string{}
	var names []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		names = append(names, rel)
		m, err := decode(b)
		if err != nil {
			got[rel] = "error"
			return nil
		}
		sum := sha256.Sum256([]byte(encode(t, View(m))))
		got[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		var b strings.Builder
		for _, h := range header {
			b.WriteString(h + "\n")
		}
		for _, n := range names {
			fmt.Fprintf(&b, "%-64s  %s\n", got[n], n)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, n := range names {
		if w, ok := want[n]; !ok {
			t.Errorf("%s: not in %s (run with -update)", n, golden)
		} else if got[n] != w {
			t.Errorf("sha256(View(%s)) = %s, want %s", n, got[n], w)
		}
	}
	if len(want) != len(names) {
		t.Errorf("%s lists %d files, the corpus has %d", golden, len(want), len(names))
	}
}

// TestView checks every kind of value on a message made for it.
func TestView(t *testing.T) {
	seven := uint64(7)
	m := &pdu.Message{
		Type: pdu.TypeSendReq, TransactionID: "T1", Version: pdu.Version12,
		Date:    time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		From:    &pdu.From{Insert: true},
		To:      []pdu.EncodedString{{Text: "+15551234567/TYPE=PLMN"}, pdu.Str("b@example.com")},
		Subject: pdu.EncodedString{Charset: pdu.CharsetUTF8, Text: "Hé"},
		Expiry:  pdu.Relative(72 * time.Hour), DeliveryTime: pdu.Absolute(time.Unix(1e9, 0)),
		MessageClass: pdu.ClassPersonal, MessageSize: 5, Priority: pdu.PriorityHigh,
		DeliveryReport: pdu.No, ResponseText: pdu.EncodedString{Charset: pdu.CharsetUTF8},
		MMFlags:            []pdu.MMFlag{{Op: 0x80, Flag: pdu.Str("seen")}, {Op: 0x90, Flag: pdu.Str("x")}},
		MboxTotals:         []pdu.Quantity{{Value: 3}, {Size: true, Value: 4096}},
		Attributes:         []pdu.Field{pdu.FieldSubject, pdu.Field(0x70)},
		PreviouslySentBy:   []pdu.PreviouslySentBy{{Count: 1, Address: pdu.Str("+1")}},
		ElementDescriptors: []pdu.ElementDescriptor{{Reference: "r", Params: []pdu.Param{{Name: "type", Value: "image/png"}}}},
		Limit:              &seven,
		Unknown: []pdu.Header{{Name: "X-App", Value: []byte("v")}, {Code: 0xC5, Value: []byte("ab\x00")},
			{Code: 0xC6, Value: []byte{1, 2}}},
		ContentType: pdu.ContentType{Type: "text/plain", Params: []pdu.Param{{Name: "charset", Value: "utf-8"},
			{Token: 0x81 + 0x10, Value: "\x01"}}},
		Body: []byte("<hi>"),
	}
	const want = `{
  "message_type": "m-send-req",
  "transaction_id": "T1",
  "mms_version": "1.2",
  "date": "2024-05-06T07:08:09Z",
  "from": "",
  "from_insert": true,
  "to": [
    "+15551234567/TYPE=PLMN",
    "b@example.com"
  ],
  "subject": "Hé",
  "content_type": "text/plain",
  "content_type_params": {
    "charset": "utf-8",
    "0x11": "0x01"
  },
  "headers": {
    "X-Mms-Delivery-Report": "No",
    "X-Mms-Delivery-Time": "2001-09-09T01:46:40Z",
    "X-Mms-Expiry": "+259200s",
    "X-Mms-Message-Class": "personal",
    "X-Mms-Message-Size": 5,
    "X-Mms-Priority": "High",
    "X-Mms-Response-Text": "",
    "X-Mms-Previously-Sent-By": [
      {
        "count": 1,
        "address": "+1"
      }
    ],
    "X-Mms-MM-Flags": [
      {
        "op": "add",
        "flag": "seen"
      },
      {
        "op": "0x90",
        "flag": "x"
      }
    ],
    "X-Mms-Attributes": [
      "Subject",
      "0x70"
    ],
    "X-Mms-Mbox-Totals": [
      {
        "unit": "messages",
        "value": 3
      },
      {
        "unit": "octets",
        "value": 4096
      }
    ],
    "X-Mms-Element-Descriptor": [
      {
        "reference": "r",
        "params": {
          "type": "image/png"
        }
      }
    ],
    "X-Mms-Limit": 7,
    "X-App": "v",
    "0x45": "ab",
    "0x46": "0x0102"
  },
  "parts": [
    {
      "content_type": "text/plain",
      "charset": "utf-8",
      "size": 4,
      "sha256": "` + "%s" + `",
      "text": "<hi>"
    }
  ]
}
`
	sum := sha256.Sum256(m.Body)
	if got, w := encode(t, View(m)), fmt.Sprintf(want, hex.EncodeToString(sum[:])); got != w {
		t.Errorf("View(m) =\n%s\nwant\n%s", got, w)
	}
	// Through json.Marshal, as the outbox writes it, HTML is escaped.
	b, err := json.Marshal(View(m))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"text":"\u003chi\u003e"`)) {
		t.Errorf("json.Marshal(View(m)) = %s, want the text HTML-escaped", b)
	}
}

// TestViewMultipart checks that the parts of a multipart body are the
// parts, and that a message without a body has no parts key.
func TestViewMultipart(t *testing.T) {
	m := &pdu.Message{Type: pdu.TypeRetrieveConf, ContentType: pdu.ContentType{Type: "application/vnd.wap.multipart.related"},
		Parts: []pdu.Part{
			{ContentType: pdu.ContentType{Type: "image/jpeg", Params: []pdu.Param{{Name: "name", Value: "a.jpg"}}},
				ContentID: "<a>", Body: []byte{0xFF, 0xD8}},
			{ContentType: pdu.ContentType{Type: "text/plain"}, ContentLocation: "t.txt", Body: []byte("hi")},
		}}
	v := View(m)
	if len(v.Parts) != 2 {
		t.Fatalf("View(m).Parts = %+v, want 2 parts", v.Parts)
	}
	if p := v.Parts[0]; p.Name != "a.jpg" || p.ContentID != "<a>" || p.Size != 2 || p.Text != nil {
		t.Errorf("View(m).Parts[0] = %+v, want a.jpg, <a>, 2 octets, no text", p)
	}
	if p := v.Parts[1]; p.Name != "t.txt" || p.Text == nil || *p.Text != "hi" {
		t.Errorf("View(m).Parts[1] = %+v, want t.txt with text hi", p)
	}
	ack := View(&pdu.Message{Type: pdu.TypeAcknowledgeInd, TransactionID: "x", Version: pdu.Version10})
	if got, want := encode(t, ack), "{\n  \"message_type\": \"m-acknowledge-ind\",\n  \"transaction_id\": \"x\",\n  \"mms_version\": \"1.0\"\n}\n"; got != want {
		t.Errorf("View(ack) = %q, want %q", got, want)
	}
}

// TestObject checks the ordered object: repeated keys gather in an array,
// AddField leaves empty values out.
func TestObject(t *testing.T) {
	var o Object
	o.Add("b", 1)
	o.Add("a", "x")
	o.Add("b", 2)
	o.Add("b", 3)
	o.AddField(pdu.FieldSubject, "")
	o.AddField(pdu.FieldTo, []string(nil))
	o.AddField(pdu.FieldMessageType, "MM4_forward.REQ")
	o.AddField(pdu.FieldPriority, pdu.PriorityLow)
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"b":[1,2,3],"a":"x","message_type":"MM4_forward.REQ","X-Mms-Priority":"Low"}`; string(b) != want {
		t.Errorf("json.Marshal(o) = %s, want %s", b, want)
	}
}

func TestRawValue(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{[]byte("abc\x00"), "abc"},
		{[]byte("\x7f\xe9t\xe9\x00"), "été"},
		{[]byte("a\x01\x00"), "0x610100"},
		{[]byte{0x00}, "0x00"},
		{[]byte{0x81}, "0x81"},
		{nil, "0x"},
	} {
		if got := RawValue(tc.in); got != tc.want {
			t.Errorf("RawValue(% x) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
