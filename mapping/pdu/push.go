package pdu

// WSP push unwrapping. An m-notification-ind reaches a handset as the body
// of a WSP Push PDU (connectionless, WAP-230 §8.2.4.1, carried over SMS or
// UDP 2948). Tools that capture those pushes store the whole WSP PDU, so a
// decoder of stored PDUs meets them; UnwrapPush finds the MMS PDU inside.

import "errors"

// WSP PDU types of a push (WAP-230 Table 34).
const (
	wspPush          = 0x06
	wspConfirmedPush = 0x07
)

var errNotPush = errors.New("not a WSP Push PDU (octet 1 is not 0x06 Push or 0x07 ConfirmedPush)")

// IsPush reports whether b looks like a connectionless WSP Push PDU: its
// second octet (after the TID) is the PDU type Push (0x06) or
// ConfirmedPush (0x07). A bare MMS PDU never matches, since it starts with
// 0x8C and a message type octet >= 0x80.
func IsPush(b []byte) bool {
	return len(b) >= 2 && (b[1] == wspPush || b[1] == wspConfirmedPush)
}

// UnwrapPush takes a connectionless WSP Push PDU and returns the Content-Type
// of its body and the body itself, which for an MMS push is the MMS PDU
// (normally an m-notification-ind) to pass to [Decode]. The body aliases b.
//
// WAP-230 §8.2.4.1:
//
//	Push = TID PDU-Type HeadersLen ContentType Headers Data
//	TID = Octet; PDU-Type = Octet (0x06 | 0x07); HeadersLen = Uintvar
//
// HeadersLen counts the Content-Type and the Headers. Only the Content-Type
// is read; the other push headers (X-Wap-Application-Id, …) are skipped.
// Errors are *[DecodeError] values with offsets into b; UnwrapPush never
// panics.
func UnwrapPush(b []byte) (ContentType, []byte, error) {
	if !IsPush(b) {
		return ContentType{}, nil, &DecodeError{Offset: 1, Field: "WSP PDU type", Err: errNotPush}
	}
	r := &reader{b: b, off: 2}
	hl, err := r.uintvar()
	if err != nil {
		return ContentType{}, nil, &DecodeError{Offset: 2, Field: "push HeadersLen", Err: err}
	}
	if hl > uint64(r.remaining()) {
		return ContentType{}, nil, &DecodeError{Offset: 2, Field: "push HeadersLen", Err: errShort}
	}
	hstart := r.off
	hend := hstart + int(hl)
	hr := &reader{b: b[:hend], off: hstart}
	ct, err := hr.contentType()
	if err != nil {
		return ContentType{}, nil, &DecodeError{Offset: hstart, Field: "push Content-Type", Err: err}
	}
	return ct, b[hend:len(b):len(b)], nil
}
