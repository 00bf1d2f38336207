package pdu

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestFieldTable checks the table against what OMA-MMS-ENC §7.3 says of
// a few fields, and its internal consistency.
func TestFieldTable(t *testing.T) {
	for _, tc := range []struct {
		f          Field
		name, json string
		repeat     bool
	}{
		{FieldMessageType, "X-Mms-Message-Type", "message_type", false},
		{FieldTo, "To", "to", true},
		{FieldMessageClass, "X-Mms-Message-Class", "", false},
		{FieldMboxQuotas, "X-Mms-Mbox-Quotas", "", true},
		{FieldContentType, "Content-Type", "content_type", false},
		{FieldCancelStatus, "X-Mms-Cancel-Status", "", false},
		{FieldUnknown, "0x00", "", false},
		{Field(0x40), "0x40", "", false},
		{Field(0x7F), "0x7F", "", false},
	} {
		if got := tc.f.String(); got != tc.name {
			t.Errorf("Field(0x%02X).String() = %q, want %q", byte(tc.f), got, tc.name)
		}
		if got := tc.f.JSONName(); got != tc.json {
			t.Errorf("Field(0x%02X).JSONName() = %q, want %q", byte(tc.f), got, tc.json)
		}
		if got := tc.f.Repeatable(); got != tc.repeat {
			t.Errorf("Field(0x%02X).Repeatable() = %v, want %v", byte(tc.f), got, tc.repeat)
		}
	}
	want := []Field{FieldMessageType, FieldTransactionID, FieldMMSVersion, FieldMessageID,
		FieldDate, FieldFrom, FieldTo, FieldCc, FieldBcc, FieldSubject}
	if got := LeadingFields(); !slices.Equal(got, want) {
		t.Errorf("LeadingFields() = %v, want %v", got, want)
	}
	names := map[string]Field{}
	for f := Field(1); f <= FieldCancelStatus; f++ {
		fi := fieldTable[f]
		if fi.name == "" {
			t.Errorf("field 0x%02X has no name", byte(f))
		}
		if g, dup := names[fi.name]; dup {
			t.Errorf("fields 0x%02X and 0x%02X are both %q", byte(g), byte(f), fi.name)
		}
		names[fi.name] = f
		// Every leading field has a JSON key of its own, and so does
		// Content-Type; the others show under "headers".
		if (fi.lead > 0 || f == FieldContentType) != (fi.json != "") {
			t.Errorf("field %v: lead %d, JSON name %q", f, fi.lead, fi.json)
		}
	}
}

// TestValue checks that Value reports the members of Message by field,
// and absence by the rule Append uses.
func TestValue(t *testing.T) {
	n := uint64(7)
	exp := Relative(time.Hour)
	m := &Message{Type: TypeNotificationInd, TransactionID: "t1", Version: Version12,
		Date: time.Unix(1e9, 0).UTC(), To: []EncodedString{{Text: "+1"}},
		MessageClass: ClassPersonal, MessageSize: 1234, Priority: PriorityHigh,
		DeliveryReport: Yes, Expiry: exp, ResponseText: Str("ok"), MessageCount: &n,
		Attributes: []Field{FieldSubject}, ContentType: ContentType{Type: "text/plain"}}
	for _, tc := range []struct {
		f    Field
		want any
	}{
		{FieldMessageType, TypeNotificationInd},
		{FieldTransactionID, "t1"},
		{FieldMMSVersion, Version12},
		{FieldDate, time.Unix(1e9, 0).UTC()},
		{FieldTo, []EncodedString{{Text: "+1"}}},
		{FieldMessageClass, "personal"},
		{FieldMessageSize, uint64(1234)},
		{FieldPriority, PriorityHigh},
		{FieldDeliveryReport, Yes},
		{FieldExpiry, exp},
		{FieldResponseText, Str("ok")},
		{FieldMessageCount, uint64(7)},
		{FieldAttributes, []Field{FieldSubject}},
		{FieldContentType, ContentType{Type: "text/plain"}},
	} {
		got, ok := m.Value(tc.f)
		if !ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Value(%v) = %#v, %v; want %#v, true", tc.f, got, ok, tc.want)
		}
	}
	for _, f := range []Field{FieldUnknown, FieldFrom, FieldCc, FieldSubject, FieldReadReport,
		FieldStart, FieldReplyChargingSize, FieldContent, FieldAdditionalHeaders, Field(0x40), Field(0x7F)} {
		if got, ok := m.Value(f); ok {
			t.Errorf("Value(%v) = %#v, true; want absent", f, got)
		}
	}
	// Every field Append would write has a value.
	dec, err := Decode(dehex(t, specExample))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range dec.appendOrder(nil) {
		if _, ok := dec.Value(f); !ok {
			t.Errorf("spec example: Value(%v) absent, but Append writes it", f)
		}
	}
}
