package pdu

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// specExample is the M-Send.req of the encapsulation digest, §12, which
// Wireshark decodes as annotated there.
const specExample = `8c 80 98 54 31 00 8d 92 89 01 81 97 2b 31 35 35
35 31 32 33 34 35 36 37 2f 54 59 50 45 3d 50 4c
4d 4e 00 96 04 ea 48 69 00 84 13 b3 8a 3c 74 31
3e 00 89 74 65 78 74 2f 70 6c 61 69 6e 00 01 1b
05 0b 83 81 ea 85 68 69 2e 74 78 74 00 c0 22 3c
74 31 3e 00 8e 68 69 2e 74 78 74 00 48 65 6c 6c
6f`

func specExampleMessage() *Message {
	return &Message{
		Type: TypeSendReq, TransactionID: "T1", Version: Version12,
		From:    &From{Insert: true},
		To:      []EncodedString{{Text: "+15551234567/TYPE=PLMN"}},
		Subject: EncodedString{Charset: CharsetUTF8, Text: "Hi"},
		ContentType: ContentType{Type: "application/vnd.wap.multipart.related",
			Params: []Param{{Name: "start", Value: "<t1>"}, {Name: "type", Value: "text/plain"}}},
		Parts: []Part{{
			ContentType:     ContentType{Type: "text/plain", Params: []Param{{Name: "charset", Value: "utf-8"}, {Name: "name", Value: "hi.txt"}}},
			ContentID:       "<t1>",
			ContentLocation: "hi.txt",
			Body:            []byte("Hello"),
		}},
	}
}

func TestSpecExampleDecode(t *testing.T) {
	b := dehex(t, specExample)
	m, err := Decoder{Strict: true}.Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := specExampleMessage()
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Decode = %+v\nwant %+v", m, want)
	}
	if got := m.Parts[0].Body; &got[0] != &b[92] {
		t.Error("part body was copied; want a sub-slice of the input")
	}
	if s := m.Subject.String(); s != "Hi" {
		t.Errorf("Subject = %q", s)
	}
	if txt, ok := m.Parts[0].Text(); !ok || txt != "Hello" {
		t.Errorf("Text() = %q, %v", txt, ok)
	}
}

func TestSpecExampleEncode(t *testing.T) {
	got, err := specExampleMessage().Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := dehex(t, specExample); !bytes.Equal(got, want) {
		t.Errorf("Append =\n% x\nwant\n% x", got, want)
	}
	// Appending to a non-empty buffer keeps what was there.
	got2, _ := specExampleMessage().Append([]byte("xy"))
	if !bytes.Equal(got2[2:], got) || string(got2[:2]) != "xy" {
		t.Error("Append to a non-empty buffer changed its prefix or result")
	}
}

func TestSendConfExample(t *testing.T) {
	b := dehex(t, "8C 81 98 54 31 00 8D 92 92 80 8B 61 62 63 31 32 33 00")
	want := &Message{Type: TypeSendConf, TransactionID: "T1", Version: Version12, ResponseStatus: ResponseOK, MessageID: "abc123"}
	m, err := Decoder{Strict: true}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want.Order = []Field{FieldMessageType, FieldTransactionID, FieldMMSVersion, FieldResponseStatus, FieldMessageID}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Decode = %+v, want %+v", m, want)
	}
	if out, _ := m.Append(nil); !bytes.Equal(out, b) {
		t.Errorf("re-encoded = % x, want % x", out, b)
	}
	m.Order = nil
	if out, _ := m.Append(nil); !bytes.Equal(out, dehex(t, "8C 81 98 54 31 00 8D 92 8B 61 62 63 31 32 33 00 92 80")) {
		t.Errorf("canonical order = % x", out)
	}
}

func TestVariants(t *testing.T) {
	// Values from the digest's wire-checked variants.
	date := time.Date(2023, 9, 12, 6, 6, 56, 0, time.UTC)
	for _, tt := range []struct {
		m    Message
		want string
	}{
		{Message{Type: TypeSendReq, From: &From{Address: EncodedString{Text: "+15551234567/TYPE=PLMN"}}},
			"8c 80 89 18 80 2b 31 35 35 35 31 32 33 34 35 36 37 2f 54 59 50 45 3d 50 4c 4d 4e 00"},
		{Message{Type: TypeSendReq, Date: date}, "8c 80 85 04 65 00 00 00"},
		{Message{Type: TypeSendReq, Expiry: Relative(24 * time.Hour)}, "8c 80 88 05 81 03 01 51 80"},
		{Message{Type: TypeSendReq, MessageClass: ClassPersonal, Priority: PriorityNormal, DeliveryReport: No, ReadReport: No},
			"8c 80 86 81 8a 80 8f 81 90 81"},
		{Message{Type: TypeSendReq, ContentType: ContentType{Type: "application/vnd.wap.multipart.mixed"}}, "8c 80 84 a3 00"},
		{Message{Type: TypeSendReq, ContentType: ContentType{Type: "application/smil"}, Body: []byte("x")},
			"8c 80 84 61 70 70 6c 69 63 61 74 69 6f 6e 2f 73 6d 69 6c 00 78"},
		{Message{Type: TypeSendReq, MessageClass: "x-custom"}, "8c 80 8a 78 2d 63 75 73 74 6f 6d 00"},
	} {
		got, err := tt.m.Append(nil)
		if err != nil {
			t.Errorf("Append(%+v): %v", tt.m, err)
			continue
		}
		if want := dehex(t, tt.want); !bytes.Equal(got, want) {
			t.Errorf("Append(%+v) =\n% x\nwant\n% x", tt.m, got, want)
		}
		back, err := Decode(got)
		if err != nil {
			t.Errorf("Decode(% x): %v", got, err)
			continue
		}
		m := tt.m
		if len(m.Body) == 0 {
			m.Body = nil
		}
		if m.ContentType.IsMultipart() && m.Parts == nil {
			m.Parts = []Part{}
		}
		if !reflect.DeepEqual(back, &m) {
			t.Errorf("round trip = %+v, want %+v", back, &m)
		}
	}
}

// fullMessage sets every header field of OMA-MMS-ENC 1.3 that type t can
// carry, so that the round trip covers every encoder and decoder path.
func fullMessage(t MessageType) *Message {
	u := func(v uint64) *uint64 { return &v }
	d := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
	m := &Message{
		Type: t, TransactionID: "tx-1", Version: Version13, MessageID: "msg-1@mmsrelay", Date: d,
		From:    &From{Address: Str("alice@example.com")},
		To:      []EncodedString{Str("+15551234567/TYPE=PLMN"), Str("bob@example.net")},
		Cc:      []EncodedString{Str("+447911123456/TYPE=PLMN")},
		Bcc:     []EncodedString{Str("+4915112345678/TYPE=PLMN")},
		Subject: Str("Grüße aus Köln, a subject longer than thirty octets 👋"),

		ContentLocation: "http://mmsc.example/m/1", MessageClass: ClassInformational, MessageSize: 123456,
		Priority: PriorityHigh, DeliveryReport: Yes, ReadReport: No, ReportAllowed: Yes,
		ResponseStatus: ResponsePermanentContentRejected, ResponseText: Str("too big"),
		SenderVisibility: VisibilityShow, Status: StatusRetrieved,
		Expiry: Relative(48 * time.Hour), DeliveryTime: Absolute(d.Add(time.Hour)),
		RetrieveStatus: 0xE3, RetrieveText: Str("élan"), ReadStatus: ReadStatusRead,
		ReplyCharging: 0x80, ReplyChargingDeadline: Absolute(d.Add(72 * time.Hour)), ReplyChargingID: "rc-1",
		ReplyChargingSize:  1000,
		PreviouslySentBy:   []PreviouslySentBy{{Count: 1, Address: Str("+15550000001/TYPE=PLMN")}, {Count: 2, Address: Str("carol@example.org")}},
		PreviouslySentDate: []PreviouslySentDate{{Count: 1, Date: d.Add(-time.Hour)}},
		Store:              Yes, MMState: 0x82, MMFlags: []MMFlag{{Op: 0x80, Flag: Str("$Seen")}},
		StoreStatus: 0x80, StoreStatusText: Str("stored"), Stored: Yes,
		Attributes: []Field{FieldSubject, FieldFrom}, Totals: Yes,
		MboxTotals: []Quantity{{Value: 5}, {Size: true, Value: 300000}}, Quotas: No,
		MboxQuotas:   []Quantity{{Value: 100}},
		MessageCount: u(0), Start: u(0), Limit: u(200), DistributionIndicator: No,
		ElementDescriptors: []ElementDescriptor{{Reference: "http://mmsc.example/e/1",
			Params: []Param{{Name: "type", Value: "image/jpeg"}}}},
		RecommendedRetrievalMode: 0x80, RecommendedRetrievalModeText: Str("tap to fetch"),
		StatusText: Str("ok"), ApplicID: "app", ReplyApplicID: "reply-app", AuxApplicInfo: "aux",
		ContentClass: 0x82, DRMContent: No, AdaptationAllowed: Yes, ReplaceID: "old-1", CancelID: "old-2",
		CancelStatus: 0x80,
		Unknown:      []Header{{Name: "X-Custom", Value: []byte("v")}, {Code: 0xC5, Value: []byte{0x81}}},
	}
	switch t {
	case TypeSendReq, TypeRetrieveConf, TypeMboxUploadReq, TypeMboxDescr:
		m.ContentType = ContentType{Type: "application/vnd.wap.multipart.related", Params: []Param{
			{Name: "start", Value: "<smil>"}, {Name: "type", Value: "application/smil"}}}
		m.Parts = []Part{
			{ContentType: ContentType{Type: "application/smil", Params: []Param{{Name: "charset", Value: "utf-8"}}},
				ContentID: "<smil>", ContentLocation: "smil.xml", Body: []byte("<smil></smil>")},
			{ContentType: ContentType{Type: "text/plain", Params: []Param{{Name: "charset", Value: "utf-8"}, {Name: "name", Value: "text.txt"}}},
				ContentID: "<text>", ContentLocation: "text.txt", Body: []byte("Hallo Welt, grüß dich")},
			{ContentType: ContentType{Type: "image/jpeg", Params: []Param{{Name: "name", Value: "photo 1.jpg", Token: 0x97}}},
				ContentID: "<img>", ContentLocation: "photo.jpg", Body: bytes.Repeat([]byte{0xFF, 0xD8, 0}, 100),
				Headers: []Header{{Code: 0xAE, Value: []byte{0x02, 0x81, 0x00}}, {Name: "X-Note", Value: []byte("n")}}},
			{ContentType: ContentType{Type: "audio/amr", Params: []Param{{Name: "x-extra", Value: "a b"}}}, Body: []byte("#!AMR\n")},
		}
	}
	return m
}

func TestRoundTripEveryType(t *testing.T) {
	for ty := TypeSendReq; ty <= TypeCancelConf; ty++ {
		m := fullMessage(ty)
		b, err := m.Append(nil)
		if err != nil {
			t.Fatalf("%s: Append: %v", ty, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: Decode: %v", ty, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: round trip differs:\n got %+v\nwant %+v", ty, got, m)
		}
		// What we write passes the strict decoder (but for the
		// deliberately unknown header, which strict refuses).
		m.Unknown = m.Unknown[:1]
		b, _ = m.Append(nil)
		if _, err := (Decoder{Strict: true}).Decode(b); err != nil {
			t.Errorf("%s: strict decode of our own output: %v", ty, err)
		}
	}
}

func TestOrderKept(t *testing.T) {
	// A decoded PDU with an unusual order re-encodes to the same bytes;
	// an added field goes after the recorded ones.
	in := dehex(t, "8c 81 98 31 00 8d 91 8b 00 92 80")
	m, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	if m.Order == nil || m.MessageID != "" {
		t.Fatalf("Order = %v, MessageID = %q; want a recorded order and an empty id", m.Order, m.MessageID)
	}
	if out, _ := m.Append(nil); !bytes.Equal(out, in) {
		t.Errorf("re-encoded = % x, want % x", out, in)
	}
	m.ResponseText = Str("ok")
	out, _ := m.Append(nil)
	if want := append(bytes.Clone(in), dehex(t, "93 6f 6b 00")...); !bytes.Equal(out, want) {
		t.Errorf("with added field = % x, want % x", out, want)
	}
	m.Order = nil
	out, _ = m.Append(nil)
	if bytes.Contains(out, []byte{0x8b, 0x00}) {
		t.Errorf("canonical encoding kept the empty Message-ID: % x", out)
	}
}

func TestEncodeErrors(t *testing.T) {
	for name, m := range map[string]*Message{
		"no type":      {TransactionID: "1"},
		"NUL in text":  {Type: TypeSendReq, TransactionID: "a\x00b"},
		"bad charset":  {Type: TypeSendReq, ContentType: ContentType{Type: "text/plain", Params: []Param{{Name: "charset", Value: "x-klingon"}}}},
		"bad integer":  {Type: TypeSendReq, ContentType: ContentType{Type: "text/plain", Params: []Param{{Name: "size", Value: "big"}}}},
		"wrong token":  {Type: TypeSendReq, ContentType: ContentType{Type: "text/plain", Params: []Param{{Name: "name", Value: "x", Token: 0x81}}}},
		"NUL in a cid": {Type: TypeSendReq, ContentType: ContentType{Type: "application/vnd.wap.multipart.mixed"}, Parts: []Part{{ContentType: ContentType{Type: "text/plain"}, ContentID: "<a\x00>"}}},
	} {
		if b, err := m.Append([]byte("keep")); err == nil {
			t.Errorf("%s: Append succeeded: % x", name, b)
		} else if string(b) != "keep" {
			t.Errorf("%s: Append changed the buffer on error", name)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	valid, _ := specExampleMessage().Append(nil)
	for _, tt := range []struct {
		name   string
		in     []byte
		strict bool
		offset int
		field  string
		err    error
	}{
		{"empty", nil, false, 0, "X-Mms-Message-Type", errNotPDU},
		{"text", []byte("This is not a PDU"), false, 0, "X-Mms-Message-Type", errNotPDU},
		{"html", []byte("<html><body>hi</body></html>"), false, 0, "X-Mms-Message-Type", errNotPDU},
		{"type only", []byte{0x8c}, false, 0, "X-Mms-Message-Type", errNotPDU},
		{"cut subject", valid[:38], false, 36, "Subject", errShort},
		{"cut in part", valid[:70], false, 63, "part 1", errShort},
		{"cut body", valid[:95], true, 64, "part 1 DataLen", errShort},
		{"unknown type strict", []byte{0x8c, 0xF0}, true, 1, "X-Mms-Message-Type", errBadToken},
		{"huge part count", dehex(t, "8c 80 84 a3 8f ff ff ff 7f 00 00"), false, 4, "multipart entry count", errTooMany},
		{"uintvar overflow", dehex(t, "8c 80 84 a3 ff ff ff ff ff ff"), false, 4, "multipart entry count", errUintvarOverflow},
		{"duplicate strict", dehex(t, "8c 80 98 31 00 8d 92 98 32 00"), true, 7, "X-Mms-Transaction-ID", errDuplicate},
		{"order strict", dehex(t, "8c 80 96 41 00 98 31 00 8d 92"), true, 2, "Subject", errOrder},
		{"missing mandatory strict", dehex(t, "8c 81 98 31 00 8d 92"), true, 7, "X-Mms-Response-Status", errMissing},
		{"trailing strict", append(bytes.Clone(valid), 0xAA), true, 97, "multipart", errTrailing},
		{"bad header octet", dehex(t, "8c 80 98 31 00 05"), false, 5, "header", errBadToken},
	} {
		_, err := Decoder{Strict: tt.strict}.Decode(tt.in)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: Decode error = %v, want a *DecodeError", tt.name, err)
			continue
		}
		if de.Offset != tt.offset || !strings.HasPrefix(de.Field, tt.field) || !errors.Is(err, tt.err) {
			t.Errorf("%s: error = %q (offset %d, field %q), want offset %d, field %q, %v",
				tt.name, err, de.Offset, de.Field, tt.offset, tt.field, tt.err)
		}
		if !strings.Contains(err.Error(), "offset") {
			t.Errorf("%s: error text %q does not name the offset", tt.name, err)
		}
	}
	if _, err := Decode([]byte("not a pdu")); !IsNotPDU(err) {
		t.Errorf("IsNotPDU(%v) = false", err)
	}
	if _, err := Decode(valid[:38]); IsNotPDU(err) {
		t.Errorf("IsNotPDU(truncated PDU error) = true")
	}
}

func TestLenientQuirks(t *testing.T) {
	// An Expiry in the wrong form is kept raw, in order, and written back.
	in := dehex(t, "8c 82 98 31 00 8d 90 88 83 8e 02 01 00")
	m, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	if m.Expiry != nil || len(m.Unknown) != 1 || m.Unknown[0].Code != 0x88 || m.MessageSize != 256 {
		t.Errorf("Decode = %+v; want Expiry kept raw in Unknown", m)
	}
	if out, _ := m.Append(nil); !bytes.Equal(out, in) {
		t.Errorf("re-encoded = % x, want % x", out, in)
	}
	if _, err := (Decoder{Strict: true}).Decode(in); err == nil {
		t.Error("strict decode accepted a malformed Expiry")
	}
	// NUL padding after the headers, as one MMSC sends.
	if _, err := Decode(dehex(t, "8c 83 98 31 00 8d 92 95 81 00 00")); err != nil {
		t.Errorf("NUL padding: %v", err)
	}
	// A last part cut short keeps what there is.
	full, _ := specExampleMessage().Append(nil)
	m, err = Decode(full[:len(full)-2])
	if err != nil || string(m.Parts[0].Body) != "Hel" {
		t.Errorf("cut last part: %v, body %q", err, m.Parts[0].Body)
	}
	// Textual charset parameter and WSP 1.4 parameter codes.
	ct := dehex(t, "8c 84 84 12 83 63 68 61 72 73 65 74 00 75 74 66 2d 38 00 97 61 00")
	if m, err = Decode(ct); err != nil {
		t.Fatal(err)
	}
	want := []Param{{Name: "charset", Value: "utf-8"}, {Name: "name", Value: "a", Token: 0x97}}
	if !reflect.DeepEqual(m.ContentType.Params, want) {
		t.Errorf("params = %+v, want %+v", m.ContentType.Params, want)
	}
}

func TestDisposition(t *testing.T) {
	p := Part{Headers: []Header{{Code: 0xAE, Value: dehex(t, "0f 81 86 49 4d 47 5f 36 38 30 37 2e 6a 70 67 00")}}}
	d, params := p.Disposition()
	if d != "attachment" || len(params) != 1 || params[0].Name != "filename" || params[0].Value != "IMG_6807.jpg" {
		t.Errorf("Disposition() = %q, %+v", d, params)
	}
}

func TestStringers(t *testing.T) {
	for got, want := range map[string]string{
		TypeSendReq.String(): "m-send-req", TypeCancelConf.String(): "m-cancel-conf",
		MessageType(0xF0).String(): "0xF0", Version12.String(): "1.2", Version(0x9F).String(): "1",
		FieldMessageClass.String(): "X-Mms-Message-Class", Field(0x4A).String(): "0x4A",
		ResponseOK.String(): "Ok", StatusRetrieved.String(): "Retrieved", Yes.String(): "Yes",
		(Header{Code: 0xC0}).HeaderName(): "Content-ID", PriorityHigh.String(): "High",
	} {
		if got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
	if mt, ok := ParseMessageType("m-retrieve-conf"); !ok || mt != TypeRetrieveConf {
		t.Errorf("ParseMessageType = %v, %v", mt, ok)
	}
	if ResponseStatus(0xC7).Class() != ClassTransient || ResponseStatus(0xF0).Class() != ClassPermanent || ResponseOK.Class() != ClassSuccess {
		t.Error("ResponseStatus.Class is wrong")
	}
}
