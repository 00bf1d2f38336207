// Package replies keeps the relay's reply bookkeeping: which email sender a
// handset's reply belongs to, and which numbers have opted out.
//
// The relay calls it in three places. When it sends an MMS it calls
// Book.Record, which returns the MMS From to use: in masked mode a stable
// reply address such as "r-7k3m9qz2x4c8h1dw@reply.mms.example.net", so the
// handset's reply comes back to the relay; in direct mode the sender's own
// address. When a reply arrives it calls Book.Resolve with the reply address
// and the number it came from, and gets the Conversation (sender, group
// members, newest original Message-ID and Subject) or a *ReplyError that
// says what the configured policy does with it. At RCPT of mail to a number
// it calls Book.Check, which refuses numbers that replied STOP.
//
// # Conversations and tokens
//
// A conversation is one MMS thread: a sender and the numbers that receive
// one MMS together (a single number, or the visible members of a group
// MMS). The handset shows a thread per From address, and a group MMS has
// one From for every member, so a token names the thread, not the
// (sender, number) pair alone: for a single recipient the two are the same,
// and a reply to a group token is accepted from any member of the group.
//
// A token is 80 bits from crypto/rand written as 16 characters of
// lower-case Crockford base32 (digits and letters without i, l, o, u). It is
// allocated with Store.PutKVIfAbsent, so two conversations never share one,
// and expires Options.TokenTTL after the last mail recorded on the thread:
// a thread in use keeps its address. Once expired it is never revived; the
// next mail on that thread gets a fresh token.
//
// # Store layout
//
// Every lookup is one or two point reads:
//
//	tokens         <token>                 → Conversation (JSON)
//	conversations  <numbers>|<sender>      → {"token": <token>}
//	optouts        <number>|<sender>       → OptOut
//	optouts        <number>|*              → OptOut for every sender
//
// <numbers> is the sorted, comma-separated E.164 numbers of the thread and
// <sender> is lower-cased. Numbers come first because they cannot contain
// "|" while an address's local part can.
//
// Record serialises calls for one thread inside a Book, and resolves races
// between Books on one store (several relay instances) with PutKVIfAbsent on
// the conversation key: the loser deletes its token and takes the winner's.
// Replacing an expired token is serialised within a Book only (the store
// has no compare-and-swap): two Books doing it at the same instant may each
// hand out a token, and the one whose conversation entry was written first
// then answers replies as unmapped.
//
// # Opt-outs
//
// ParseKeyword recognises STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT,
// START, UNSTOP, HELP and INFO when they are the whole message, and
// Book.Apply carries them out and returns the confirmation text to send
// back. The relay must send that confirmation even though the number has
// just opted out: Check is for mail from email senders, not for the relay's
// own answers.
package replies
