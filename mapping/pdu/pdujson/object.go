package pdujson

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// Object is a JSON object that keeps its keys in insertion order.
type Object []Member

// Member is one key of an Object and its value, which encoding/json must
// be able to marshal.
type Member struct {
	Key   string
	Value any
}

// Add sets key to v; a key added again gathers its values in an array.
func (o *Object) Add(key string, v any) {
	for i := range *o {
		f := &(*o)[i]
		if f.Key != key {
			continue
		}
		if a, ok := f.Value.([]any); ok {
			f.Value = append(a, v)
		} else {
			f.Value = []any{f.Value, v}
		}
		return
	}
	*o = append(*o, Member{key, v})
}

// AddField adds the value x of header field f under the field's key: its
// JSON name ([pdu.Field.JSONName]), or its specification name when it has
// none. x is a value as [pdu.Message.Value] returns it, or a plain string
// or []string; it is shown as the view shows that field, and left out when
// it shows as "" or an empty list.
func (o *Object) AddField(f pdu.Field, x any) {
	key := f.JSONName()
	if key == "" {
		key = f.String()
	}
	switch v := value(x).(type) {
	case string:
		if v == "" {
			return
		}
		o.Add(key, v)
	case []string:
		if len(v) == 0 {
			return
		}
		o.Add(key, v)
	case []any:
		if len(v) == 0 {
			return
		}
		o.Add(key, v)
	default:
		o.Add(key, v)
	}
}

// MarshalJSON writes the members in order, without escaping HTML
// characters.
func (o Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(f.Key); err != nil {
			return nil, fmt.Errorf("key %q: %w", f.Key, err)
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		if err := enc.Encode(f.Value); err != nil {
			return nil, fmt.Errorf("value of %q: %w", f.Key, err)
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
