package pdu

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
)

// notPDU lists the corpus files that are deliberately not bare MMS PDUs.
var notPDU = map[string]string{
	"test_retrieve__GarbagePush__garbage":     "ASCII text",
	"test_retrieve__GarbageRetrieve__garbage": "ASCII text",
	"m-notification.ind_success":              "a WSP push wrapping a PDU",
}

// TestCorpus decodes every real-world PDU, re-encodes it and decodes the
// result: the two models must be equal, and where the strict decoder
// accepts the input (it used the shortest encodings) the bytes must be
// identical.
func TestCorpus(t *testing.T) {
	files := testcorpus.Files(t, "pdu")
	var identical, total int
	for _, f := range files {
		name := filepath.Base(f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Decode(b)
		if why, ok := notPDU[name]; ok {
			if !IsNotPDU(err) {
				t.Errorf("%s (%s): Decode error = %v, want not-a-PDU", name, why, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Decode: %v", name, err)
			continue
		}
		total++
		out, err := m.Append(nil)
		if err != nil {
			t.Errorf("%s: Append: %v", name, err)
			continue
		}
		m2, err := Decode(out)
		if err != nil {
			t.Errorf("%s: Decode(Append(m)): %v", name, err)
			continue
		}
		if !reflect.DeepEqual(m, m2) {
			t.Errorf("%s: re-encoded PDU decodes to a different model", name)
		}
		if _, err := (Decoder{Strict: true}).Decode(b); err == nil {
			if !bytes.Equal(out, b) {
				t.Errorf("%s: strict decoder accepts it, but re-encoding changed the bytes", name)
			} else {
				identical++
			}
		} else if bytes.Equal(out, b) {
			identical++
		}
		for i := range m.Parts {
			if body := m.Parts[i].Body; len(body) > 0 && !aliases(b, body) {
				t.Errorf("%s: part %d body is not a sub-slice of the input", name, i+1)
			}
		}
	}
	t.Logf("%d corpus PDUs: all round-trip; %d re-encode byte-identical", total, identical)
	if total < 50 {
		t.Errorf("only %d PDUs decoded; the corpus has more", total)
	}
}

func aliases(whole, part []byte) bool {
	if len(part) == 0 {
		return true
	}
	p := &part[0]
	for i := range whole {
		if &whole[i] == p {
			return true
		}
	}
	return false
}

func corpusMessage(t *testing.T, rel string) *Message {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testcorpus.Dir(t, "pdu"), rel))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode(%s): %v", rel, err)
	}
	return m
}

// The values below were read off Wireshark's decode (shared/tools/pdu-dissect).
func TestCorpusValues(t *testing.T) {
	m := corpusMessage(t, "python-messaging/iPhone.mms")
	if m.Type != TypeSendReq || m.TransactionID != "1262957356-3" || m.Version != Version12 ||
		m.From == nil || !m.From.Insert || len(m.To) != 1 || m.To[0].String() != "1337/TYPE=PLMN" {
		t.Errorf("iPhone.mms headers = %+v", m)
	}
	if m.ContentType.Type != "application/vnd.wap.multipart.related" || m.ContentType.Param("type") != "application/smil" ||
		m.ContentType.Param("start") != "0.smil" || len(m.Parts) != 2 {
		t.Fatalf("iPhone.mms content type = %+v, %d parts", m.ContentType, len(m.Parts))
	}
	p := m.Parts[1]
	if d, params := p.Disposition(); p.ContentType.Type != "image/jpeg" || p.Name() != "IMG_6807.jpg" || p.ContentID != "1" ||
		p.ContentLocation != "IMG_6807.jpg" || d != "attachment" || len(params) != 1 || params[0].Value != "IMG_6807.jpg" ||
		!bytes.HasPrefix(p.Body, []byte{0xFF, 0xD8}) || !bytes.HasSuffix(p.Body, []byte{0xFF, 0xD9}) {
		t.Errorf("iPhone.mms part 2 = %+v (disposition %q %+v)", p.ContentType, d, params)
	}

	m = corpusMessage(t, "mms-engine/test_mms_codec__m-notification_3.ind")
	if m.Type != TypeNotificationInd || m.TransactionID != "Ad0b9pXNC_Be1I_VQ" || m.From.Address.String() != "+358540000000/TYPE=PLMN" ||
		m.DeliveryReport != No || m.MessageClass != ClassPersonal || m.MessageSize != 137105 ||
		m.Expiry == nil || !m.Expiry.Relative || m.Expiry.Seconds != 259199 ||
		m.ContentLocation != "http://mmsc42:10021/mmsc/4_2?Ad0b9pXNC_Be1I_VQ" {
		t.Errorf("m-notification_3.ind = %+v", m)
	}

	m = corpusMessage(t, "python-messaging/27d0a048cd79555de05283a22372b0eb.mms")
	if s := m.Subject.String(); s != "Angående art-tillhörighet" || m.Version != Version10 {
		t.Errorf("27d0a…mms subject = %q, version %s", s, m.Version)
	}

	m = corpusMessage(t, "mmsd/rc-mms-1-3-con-281.mms")
	if len(m.Unknown) != 1 || m.Unknown[0].Name != "X-MMS-Unrecognised-Header-Field" || string(m.Unknown[0].Value) != "Yes" {
		t.Errorf("con-281 application header = %+v", m.Unknown)
	}
	if txt, ok := m.Parts[0].Text(); !ok || !strings.Contains(txt, "Hello World") {
		t.Errorf("con-281 text = %q", txt)
	}

	m = corpusMessage(t, "mms-engine/test_delivery_ind__DeliveryRejected__m-delivery.ind")
	if m.Type != TypeDeliveryInd || m.Status != StatusRejected || m.TransactionID != "" || m.MessageID == "" {
		t.Errorf("DeliveryRejected = %+v", m)
	}
}
