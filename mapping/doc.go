// Package mapping turns email into MMS and MMS into email: the mail and
// MMS semantics of the relay, over values in memory.
//
// Email → MMS: ParseEmail (or ParseEmailBytes, without a copy) reads an
// RFC 5322 message leniently into an Email: its header fields, its body
// text in UTF-8 without quoted history, and its media in document order,
// with Notes on whatever could not be read. ToMMS makes of an Email and its
// recipients a pdu.Message (an M-Send.req or M-Retrieve.conf) that fits a
// content profile's budget as the message counts on the route's wire
// (Interface): media adapted by package adapt, text cut, a SMIL
// presentation first. The MM4 and MM3 forms are sized as mm4.NewForward
// builds them, the builder the routes send with.
//
// MMS → email: MMSFromPDU, MMSFromMM4 and MMSFromEmail (MMSFromEmailRules
// with carrier rules of one's own) read a received MMS in each of its
// shapes (a binary PDU, an MM4_forward.REQ, a carrier's MM3 mail) into one
// model, MMS; MMS.Normalize puts its parts in SMIL order, decodes its text
// and removes the carrier's boilerplate (CarrierRules, from carriers.json);
// ToEmail writes the reply email.
//
// Around them: recipients and addresses (ParseRecipient, ParseNumber,
// PLMNAddress, SenderNumber, GroupCc), SMIL (BuildSMIL, SlidesFor,
// UniqueNames, ContentID), and text (NormalizeText, StripHistory,
// HTMLToText).
//
// The package sits between the relay and the codecs: package relay (and
// the offline convert and decode commands) call it; it calls mapping/pdu
// for the binary PDU, mapping/mm4 for MM4 messages and adapt for media. It
// never touches the network or the disk, and keeps no state between calls:
// input comes in as bytes or an io.Reader, results go out as values.
package mapping
