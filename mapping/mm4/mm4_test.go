package mm4

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

func TestParseCorpus(t *testing.T) {
	files := testcorpus.Files(t, "mm4")
	if len(files) < 5 {
		t.Fatalf("only %d MM4 corpus files", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(raw)
		if err != nil {
			t.Errorf("%s: Parse: %v", filepath.Base(f), err)
			continue
		}
		if m.Type != ForwardReq && m.Type != ForwardRes {
			t.Errorf("%s: Type = %q", filepath.Base(f), m.Type)
		}
		if m.TransactionID == "" || strings.Contains(m.TransactionID, `"`) {
			t.Errorf("%s: TransactionID = %q", filepath.Base(f), m.TransactionID)
		}
		if m.Type == ForwardReq {
			_, parts, err := m.Parts(Limits{})
			if err != nil || len(parts) == 0 {
				t.Errorf("%s: Parts = %d parts, %v", filepath.Base(f), len(parts), err)
			}
			if bytes.Contains(m.Body, []byte("QUIT")) {
				t.Errorf("%s: SMTP residue left in the body", filepath.Base(f))
			}
		}
	}
}

func TestParseValues(t *testing.T) {
	dir := testcorpus.Dir(t, "mm4")
	raw, err := os.ReadFile(filepath.Join(dir, "DavidTzur1-MMS", "mm4.eml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != ForwardReq || m.TransactionID != "2617020191231125327581@mms.hotmobile.co.il" ||
		m.MessageID != "k4tr70p31rzs96@w.mms.hotmobile.co.il" || m.From != "+972500000029/TYPE=PLMN" ||
		!reflect.DeepEqual(m.To, []string{"+972540000002/TYPE=PLMN"}) || !m.AckRequest || m.DeliveryReport ||
		m.OriginatorSystem != "PostMaster@mms.hotmobile.co.il" || m.Version != "5.5.0" {
		t.Errorf("mm4.eml = %+v", m)
	}
	top, parts, err := m.Parts(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if top.Type != "multipart/related" || top.Param("type") != "application/smil" || len(parts) != 2 {
		t.Fatalf("content = %+v, %d parts", top, len(parts))
	}
	if parts[0].ContentType.Type != "application/smil" || parts[0].ContentID != "0.smil" ||
		!bytes.Contains(parts[0].Body, []byte("<smil>")) {
		t.Errorf("part 1 = %+v", parts[0])
	}
	if p := parts[1]; p.ContentType.Type != "image/jpeg" || p.Name() != "599482402.jpg" ||
		p.ContentLocation != "599482402.jpg" || !bytes.HasPrefix(p.Body, []byte{0xFF, 0xD8}) {
		t.Errorf("part 2 = %+v", p.ContentType)
	}

	raw, err = os.ReadFile(filepath.Join(dir, "DavidTzur1-MMS", "MM4Res__CellcomRES.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err = Parse(raw); err != nil {
		t.Fatal(err)
	}
	if m.Type != ForwardRes || m.RequestStatusCode != "Ok" || m.StatusText != "All is good." ||
		m.TransactionID != "jay000495897bc01090b1b05" || m.MessageID != "2022011223181841801" {
		t.Errorf("CellcomRES = %+v", m)
	}
}

func TestNotMM4(t *testing.T) {
	for _, in := range []string{"From: a@b\r\nSubject: hi\r\n\r\nbody", "", "garbage without header end"} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrNotMM4) {
			t.Errorf("Parse(%q) error = %v, want ErrNotMM4", in, err)
		}
	}
}

func TestForwardRoundTrip(t *testing.T) {
	date := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f := &Forward{
		TransactionID: "tx-1@relay", MessageID: "m-1@relay", From: "alice@example.com",
		Sender: "alice@example.com", To: []string{"+15551234567/TYPE=PLMN", "+15557654321/TYPE=PLMN"},
		Subject: "Grüße", Date: date, Expiry: date.Add(48 * time.Hour), MessageClass: "Personal",
		Priority: "High", DeliveryReport: true, AckRequest: true, OriginatorSystem: "system@mms.example.net",
		ContentType: pdu.ContentType{Type: "application/vnd.wap.multipart.related",
			Params: []pdu.Param{{Name: "start", Value: "<smil>"}, {Name: "type", Value: "application/smil"}}},
		Parts: []pdu.Part{
			{ContentType: pdu.ContentType{Type: "application/smil", Params: []pdu.Param{{Name: "charset", Value: "utf-8"}}},
				ContentID: "<smil>", ContentLocation: "smil.xml", Body: []byte("<smil><body/></smil>")},
			{ContentType: pdu.ContentType{Type: "text/plain", Params: []pdu.Param{{Name: "charset", Value: "utf-8"}}},
				ContentID: "<text>", ContentLocation: "text.txt", Body: []byte("Hallo, grüß dich = ok\nline 2")},
			{ContentType: pdu.ContentType{Type: "image/jpeg", Params: []pdu.Param{{Name: "name", Value: "a.jpg"}}},
				ContentID: "<img>", ContentLocation: "a.jpg", Body: bytes.Repeat([]byte{0xFF, 0xD8, 0x00, 0x7F}, 500)},
		},
	}
	var buf bytes.Buffer
	if err := WriteForward(&buf, f); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ReplaceAll(buf.Bytes(), []byte("\r\n"), nil), []byte("\n")) {
		t.Error("bare LF in output")
	}
	m, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != ForwardReq || m.TransactionID != f.TransactionID || m.MessageID != f.MessageID || m.Subject != "Grüße" ||
		!reflect.DeepEqual(m.To, f.To) || !m.Date.Equal(date) || !m.AckRequest || !m.DeliveryReport ||
		m.OriginatorSystem != f.OriginatorSystem || m.Priority != "High" || m.Version != DefaultVersion {
		t.Errorf("Parse(WriteForward) = %+v", m)
	}
	top, parts, err := m.Parts(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if top.Type != "multipart/related" || top.Param("start") != "<smil>" || len(parts) != 3 {
		t.Fatalf("top = %+v, %d parts", top, len(parts))
	}
	for i := range parts {
		if !bytes.Equal(parts[i].Body, f.Parts[i].Body) || parts[i].ContentID != f.Parts[i].ContentID ||
			parts[i].ContentLocation != f.Parts[i].ContentLocation || parts[i].ContentType.Type != f.Parts[i].ContentType.Type {
			t.Errorf("part %d = %+v, want %+v", i, parts[i], f.Parts[i])
		}
	}
	if est := EncodedSize(f.Parts); est < buf.Len()-600 || est > buf.Len()+2048 {
		t.Errorf("EncodedSize = %d, actual message %d", est, buf.Len())
	}
	// A header value with a line break would inject headers: refused.
	f.From = "x\r\nBcc: evil@example.com"
	if err := WriteForward(&bytes.Buffer{}, f); err == nil {
		t.Error("WriteForward accepted a header with a line break")
	}
}

func TestResponseAndReport(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteResponse(&buf, &Response{Type: ForwardRes, TransactionID: "t1", MessageID: "m1",
		StatusCode: "Error-service-denied", StatusText: "no", From: "system@a", To: "PostMaster@b"}); err != nil {
		t.Fatal(err)
	}
	m, err := Parse(buf.Bytes())
	if err != nil || m.Type != ForwardRes || m.TransactionID != "t1" || m.RequestStatusCode != "Error-service-denied" || m.StatusText != "no" {
		t.Errorf("response = %+v, %v", m, err)
	}
	buf.Reset()
	if err := WriteDeliveryReport(&buf, &DeliveryReport{TransactionID: "t2", MessageID: "m1", From: "+15551234567/TYPE=PLMN",
		To: "alice@example.com", Status: "Retrieved", AckRequest: true, OriginatorSystem: "PostMaster@b"}); err != nil {
		t.Fatal(err)
	}
	m, err = Parse(buf.Bytes())
	if err != nil || m.Type != DeliveryReportReq || m.MMStatusCode != "Retrieved" || m.MessageID != "m1" || !m.AckRequest {
		t.Errorf("delivery report = %+v, %v", m, err)
	}
	// Peers vary the case of the type: it is recognised all the same.
	m, err = Parse([]byte("X-MMS-MESSAGE-TYPE: mm4_Forward.res\r\nX-Mms-Transaction-Id: abc\r\n\r\n"))
	if err != nil || !m.IsType(ForwardRes) || m.Type != ForwardRes || m.TransactionID != "abc" {
		t.Errorf("odd case = %+v, %v", m, err)
	}
}
