package mm4

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

func forwardPDU() *pdu.Message {
	return &pdu.Message{
		Type: pdu.TypeSendReq, TransactionID: "T-1", Version: pdu.Version12,
		From:    &pdu.From{Address: pdu.Str("alice@example.com")},
		To:      []pdu.EncodedString{pdu.Str("+15551234567/TYPE=PLMN")},
		Cc:      []pdu.EncodedString{pdu.Str("+15557654321/TYPE=PLMN")},
		Subject: pdu.Str("Hello"), Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		DeliveryReport: pdu.Yes, Priority: pdu.PriorityHigh, MessageClass: pdu.ClassAdvertisement,
		Expiry:      pdu.Relative(time.Hour),
		ContentType: pdu.ContentType{Type: "application/vnd.wap.multipart.mixed"},
		Parts:       []pdu.Part{{ContentType: pdu.ContentType{Type: "text/plain"}, Body: []byte("Hi")}},
	}
}

func TestNewForwardDefaults(t *testing.T) {
	m := forwardPDU()
	f := NewForward(m, ForwardOptions{})
	if f.TransactionID != "T-1" || f.MessageID != "" || f.From != "alice@example.com" || f.Subject != "Hello" ||
		strings.Join(f.To, ",") != "+15551234567/TYPE=PLMN" || strings.Join(f.Cc, ",") != "+15557654321/TYPE=PLMN" ||
		!f.DeliveryReport || f.ReadReply || f.Priority != "High" || f.MessageClass != "Advertisement" ||
		!f.Expiry.Equal(m.Date.Add(time.Hour)) || f.Plain || len(f.Parts) != 1 {
		t.Errorf("NewForward = %+v", f)
	}
}

func TestNewForwardOptions(t *testing.T) {
	m := forwardPDU()
	opts := ForwardOptions{TransactionID: "T-2", MessageID: "M-2@relay", From: "+15550000000/TYPE=PLMN",
		Sender: "+15550000000/TYPE=PLMN@mms.relay.test", Recipients: []string{"+15551111111", "+15552222222"},
		AckRequest: true, OriginatorSystem: "system@mms.relay.test"}
	f := NewForward(m, opts)
	if f.TransactionID != "T-2" || f.MessageID != "M-2@relay" || f.From != opts.From || f.Sender != opts.Sender ||
		strings.Join(f.To, ",") != "+15551111111/TYPE=PLMN,+15552222222/TYPE=PLMN" || f.Cc != nil ||
		!f.AckRequest || f.OriginatorSystem != opts.OriginatorSystem {
		t.Errorf("NewForward = %+v", f)
	}
	var buf bytes.Buffer
	if err := WriteForward(&buf, f); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(buf.Bytes())
	if err != nil || got.TransactionID != "T-2" || got.MessageID != "M-2@relay" || !got.AckRequest ||
		got.OriginatorSystem != opts.OriginatorSystem || got.Sender != opts.Sender || got.Expiry == "" {
		t.Errorf("written = %+v, %v", got, err)
	}

	opts.Bcc = true
	if f := NewForward(m, opts); f.To != nil || f.Cc != nil {
		t.Errorf("Bcc: To %q Cc %q", f.To, f.Cc)
	}

	mm3 := ForwardOptions{Recipients: []string{"+15551111111"}, Form: FormGateway, GatewayDomain: "mms.gw.test", Plain: true}
	if f := NewForward(m, mm3); strings.Join(f.To, ",") != "15551111111@mms.gw.test" || !f.Plain {
		t.Errorf("MM3: %+v", f)
	}
	mm3.Form = FormGatewayE164
	if a := mm3.Address("+15551111111"); a != "+15551111111@mms.gw.test" {
		t.Errorf("FormGatewayE164 address = %q", a)
	}
}

func TestNewForwardSinglePart(t *testing.T) {
	m := &pdu.Message{TransactionID: "T", ContentType: pdu.ContentType{Type: "text/plain"}, Body: []byte("just text"),
		From: &pdu.From{Insert: true}}
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	f := NewForward(m, ForwardOptions{Now: now})
	if f.From != "" || !f.Date.Equal(now) || f.ContentType.Type != "application/vnd.wap.multipart.mixed" ||
		len(f.Parts) != 1 || string(f.Parts[0].Body) != "just text" || f.Parts[0].ContentType.Type != "text/plain" {
		t.Errorf("NewForward = %+v", f)
	}
}
