// Package pdu encodes and decodes the binary MMS encapsulation
// (OMA-MMS-ENC 1.0–1.3, "application/vnd.wap.mms-message") and the WSP
// (WAP-230) primitives it is built from.
//
// The package knows bytes only: it imports nothing else of mmsrelay.
//
// # Model
//
// A [Message] has a typed field for every header that OMA-MMS-ENC 1.3
// defines, the message Content-Type, and either a multipart body ([Part]s)
// or a single-entity body. Headers the package does not know, and headers
// whose value could not be read in lenient mode, are kept in
// [Message.Unknown] in the order they came and are written back verbatim.
//
// # Decoding
//
// [Decode] (lenient) and [Decoder.Decode] work over a []byte. Part bodies
// and raw header values are sub-slices of the input: nothing is copied, so
// the input must not be modified while the message is in use. Every length
// is checked against what remains of the input, so no input makes the
// decoder allocate more than a small multiple of its own size, and no input
// makes it panic. Errors are *[DecodeError] values naming the header and the
// byte offset.
//
// # Encoding
//
// [Message.Append] appends the PDU to a caller's buffer. Message-Type comes
// first, Transaction-ID and MMS-Version next, Content-Type last; every value
// takes its shortest valid encoding. A decoded message remembers its wire
// order ([Message.Order]) and the parameter codes it used, so it re-encodes
// to the same bytes when the input used the shortest encodings.
package pdu
