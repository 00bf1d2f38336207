// Package pdujson is the JSON view of an MMS PDU: the object that
// `mmsrelay decode` prints and that the outbox route writes beside each
// PDU. [View] turns a [pdu.Message] into a [Message], whose MarshalJSON
// writes the keys in a fixed, documented order.
//
// # Why a package of its own
//
// The view lives beside the codec so that the knowledge of the header
// fields stays in one place: the key each field gets and the order of the
// keys come from the codec's field table ([pdu.Field.JSONName],
// [pdu.LeadingFields], [pdu.Field.String]) and the values from
// [pdu.Message.Value]; this package only turns Go values into JSON values.
// It is not MarshalJSON on the pdu types because package pdu knows bytes
// only (no encoding/json, no struct tags, no reflection), and because the
// JSON here is one presentation of a message among several: a pdu.Message
// marshalled by encoding/json would otherwise silently change this output
// whenever the model changes.
//
// # The object
//
// The keys, in this order, each left out when the message does not carry
// it: message_type, transaction_id, mms_version, message_id, date (RFC
// 3339, UTC), from (with from_insert true for the Insert-address-token),
// to, cc, bcc, subject, content_type, content_type_params, headers (every
// other header by its specification name, in field-code order, then the
// unknown headers in wire order) and parts (one [Part] per body part).
package pdujson
