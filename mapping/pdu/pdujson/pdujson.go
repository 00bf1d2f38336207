package pdujson

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// Message is the JSON view of one message. It is built by [View], or by a
// caller that reads a message of another form (an MM4 email) into the same
// shape.
type Message struct {
	// Fields are the keys before "parts", in output order: the header
	// fields with a key of their own, content_type, content_type_params and
	// headers.
	Fields Object
	// Parts are the body parts; the JSON leaves the key out when there are
	// none.
	Parts []Part
}

// MarshalJSON writes Fields, then "parts". HTML characters are not
// escaped here (Content-IDs are "<…>"); an encoder that escapes them
// still does so.
func (v *Message) MarshalJSON() ([]byte, error) {
	o := v.Fields
	if len(v.Parts) > 0 {
		o = append(o[:len(o):len(o)], Member{"parts", v.Parts})
	}
	b, err := o.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("pdujson: %w", err)
	}
	return b, nil
}

// Part is the JSON form of a body part.
type Part struct {
	ContentType     string  `json:"content_type"`
	Charset         string  `json:"charset,omitempty"`
	Name            string  `json:"name,omitempty"`
	ContentID       string  `json:"content_id,omitempty"`
	ContentLocation string  `json:"content_location,omitempty"`
	Size            int     `json:"size"`
	SHA256          string  `json:"sha256"`
	Text            *string `json:"text,omitempty"` // the UTF-8 text of a text/* part
	// File is where a caller wrote the body (`mmsrelay decode -parts`);
	// View leaves it empty.
	File string `json:"file,omitempty"`
}

// View returns the JSON view of m. It reads m and copies what it shows:
// the result does not alias m.
func View(m *pdu.Message) *Message {
	v := &Message{}
	for _, f := range pdu.LeadingFields() {
		x, ok := m.Value(f)
		if !ok {
			continue
		}
		if from, ok := x.(*pdu.From); ok {
			// An Insert-address-token shows as "" with from_insert.
			v.Fields.Add(f.JSONName(), from.Address.String())
			if from.Insert {
				v.Fields.Add(f.JSONName()+"_insert", true)
			}
			continue
		}
		v.Fields.AddField(f, x)
	}
	v.Fields.AddField(pdu.FieldContentType, m.ContentType.Type)
	if p := Params(m.ContentType.Params); len(p) > 0 {
		v.Fields.Add(pdu.FieldContentType.JSONName()+"_params", p)
	}
	if h := headers(m); len(h) > 0 {
		v.Fields.Add("headers", h)
	}
	switch {
	case m.ContentType.IsMultipart():
		for i := range m.Parts {
			v.Parts = append(v.Parts, PartView(&m.Parts[i]))
		}
	case m.ContentType.Type != "":
		v.Parts = append(v.Parts, PartView(&pdu.Part{ContentType: m.ContentType, Body: m.Body}))
	}
	return v
}

// PartView returns the JSON form of p.
func PartView(p *pdu.Part) Part {
	sum := sha256.Sum256(p.Body)
	out := Part{
		ContentType:     p.ContentType.Type,
		Charset:         p.ContentType.Param("charset"),
		Name:            p.Name(),
		ContentID:       p.ContentID,
		ContentLocation: p.ContentLocation,
		Size:            len(p.Body),
		SHA256:          hex.EncodeToString(sum[:]),
	}
	if t, ok := p.Text(); ok {
		out.Text = &t
	}
	return out
}

// Params returns Content-Type parameters by name; a parameter the codec
// could not read is keyed by its "0xNN" code, its raw value shown as
// [RawValue] does.
func Params(ps []pdu.Param) Object {
	var o Object
	for _, p := range ps {
		if p.Name == "" {
			o.Add(fmt.Sprintf("0x%02X", p.Token&0x7F), RawValue([]byte(p.Value)))
			continue
		}
		o.Add(p.Name, p.Value)
	}
	return o
}

// headers returns every header of m that has no key of its own, in
// field-code order, then the unknown headers in wire order.
func headers(m *pdu.Message) Object {
	var o Object
	for f := pdu.Field(1); f <= pdu.FieldCancelStatus; f++ {
		if f.JSONName() != "" {
			continue
		}
		if x, ok := m.Value(f); ok {
			o.Add(f.String(), value(x))
		}
	}
	for _, h := range m.Unknown {
		if h.Code == 0 {
			o.Add(h.Name, pdu.Charset(0).Decode(h.Value))
			continue
		}
		o.Add(pdu.Field(h.Code&0x7F).String(), RawValue(h.Value))
	}
	return o
}

// RawValue shows a raw header value: the text of a Text-string (printable
// octets and a final NUL), "0x" and the octets in hex otherwise.
func RawValue(b []byte) string {
	if t, ok := bytes.CutSuffix(b, []byte{0}); ok && len(t) > 0 {
		t = bytes.TrimPrefix(t, []byte{0x7F}) // the Quote before high text
		printable := true
		for _, c := range t {
			if c < 0x20 || c == 0x7F {
				printable = false
				break
			}
		}
		if printable {
			return pdu.Charset(0).Decode(t)
		}
	}
	return "0x" + hex.EncodeToString(b)
}

// mmFlagOps names the X-Mms-MM-Flags operations.
var mmFlagOps = [...]string{"add", "remove", "filter"}

// value returns the JSON value of a header value as pdu.Message.Value
// gives it: tokens by name, times in RFC 3339 or "+Ns" when relative,
// text as UTF-8, numbers as numbers, structured values as objects.
func value(x any) any {
	switch x := x.(type) {
	case string, uint64, []string, bool:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case *pdu.TimeValue:
		if x.Relative {
			return "+" + strconv.FormatUint(x.Seconds, 10) + "s"
		}
		return x.Time(time.Time{}).Format(time.RFC3339)
	case []pdu.EncodedString:
		var a []string
		for _, s := range x {
			a = append(a, s.String())
		}
		return a
	case []pdu.Field:
		var a []string
		for _, f := range x {
			a = append(a, f.String())
		}
		return a
	case []pdu.PreviouslySentBy:
		var a []any
		for _, p := range x {
			a = append(a, Object{{"count", p.Count}, {"address", p.Address.String()}})
		}
		return a
	case []pdu.PreviouslySentDate:
		var a []any
		for _, p := range x {
			a = append(a, Object{{"count", p.Count}, {"date", p.Date.UTC().Format(time.RFC3339)}})
		}
		return a
	case []pdu.MMFlag:
		var a []any
		for _, fl := range x {
			op := fmt.Sprintf("0x%02X", fl.Op)
			if i := int(fl.Op) - 0x80; i >= 0 && i < len(mmFlagOps) {
				op = mmFlagOps[i]
			}
			a = append(a, Object{{"op", op}, {"flag", fl.Flag.String()}})
		}
		return a
	case []pdu.Quantity:
		var a []any
		for _, q := range x {
			unit := "messages"
			if q.Size {
				unit = "octets"
			}
			a = append(a, Object{{"unit", unit}, {"value", q.Value}})
		}
		return a
	case []pdu.ElementDescriptor:
		var a []any
		for _, e := range x {
			o := Object{{"reference", e.Reference}}
			if p := Params(e.Params); len(p) > 0 {
				o = append(o, Member{"params", p})
			}
			a = append(a, o)
		}
		return a
	case fmt.Stringer: // token enumerations, EncodedString
		return x.String()
	}
	return x
}
