// Recipient addresses.
//
// Design note: an email recipient such as "+1-555-123-4567@mms.example.net"
// names a phone number in its local part. libphonenumber parses far more
// leniently than we want at RCPT time: it reads vanity letters
// ("1800FLOWERS"), drops extensions ("x55") and picks digits out of words
// ("sales-2125550123"). So the local part is first checked by a strict
// grammar of our own (digits, an optional leading "+", the separators
// "-" "." " " "(" ")", and an optional "/TYPE=PLMN" suffix), and only then
// handed to phonenumbers. A number is accepted when it is *possible* for its
// region (its length fits), not only when it is valid: the metadata lags behind
// real allocations and the fictitious 555 numbers used in tests are not valid.
// Validity is opt-in (NumberOptions.StrictValidity).

package mapping

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrNotMMSDomain is wrapped by the *AddressError that ParseRecipient returns
// when the domain of the address is not one of the configured MMS domains.
// An SMTP server answers it with 550 5.1.1.
var ErrNotMMSDomain = errors.New("domain is not an MMS domain")

// ErrNotNumber is wrapped by the *AddressError that ParseNumber and
// ParseRecipient return when the address or its local part is not a phone
// number (or a configured short code). An SMTP server answers it with
// 553 5.1.3.
var ErrNotNumber = errors.New("not a phone number")

// AddressError reports why an address or a local part was refused. Err is
// ErrNotMMSDomain or ErrNotNumber; test it with errors.Is.
type AddressError struct {
	Addr   string // the address or local part as given
	Err    error  // ErrNotMMSDomain or ErrNotNumber
	Reason string // human-readable detail, may be empty
}

// Error returns a message such as
// `mapping: "sales@mms.example": not a phone number: letters are not allowed`.
func (e *AddressError) Error() string {
	s := fmt.Sprintf("mapping: %q: %v", e.Addr, e.Err)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Unwrap returns Err.
func (e *AddressError) Unwrap() error { return e.Err }

// NumberOptions controls ParseNumber.
type NumberOptions struct {
	// DefaultRegion is the CLDR region ("US", "GB") used for numbers written
	// without a leading "+". Empty means such numbers are read as
	// international numbers (country code first).
	DefaultRegion string

	// ShortCodes are accepted verbatim (digits only), e.g. "12345".
	ShortCodes []string

	// StrictValidity also requires phonenumbers.IsValidNumber. By default a
	// number only has to be possible (of a plausible length) for its region.
	StrictValidity bool
}

// RecipientOptions controls ParseRecipient.
type RecipientOptions struct {
	// Domains are the MMS domains, compared case-insensitively. Nil or empty
	// accepts any domain (and an address without a domain), as the offline
	// convert command does.
	Domains []string

	NumberOptions
}

// Recipient is an accepted MMS recipient.
type Recipient struct {
	E164    string // "+15551234567", or the short code digits ("12345")
	Address string // MMS address, "+15551234567/TYPE=PLMN"
	Domain  string // domain of the email address as given, may be empty
}

// PLMNAddress formats an E.164 number or a short code as an MMS address,
// "+15551234567/TYPE=PLMN" (OMA-MMS-ENC, section 8 "Address Encoding").
func PLMNAddress(e164 string) string {
	return e164 + "/TYPE=PLMN"
}

const plmnSuffix = "/type=plmn"

// maxLocalLen bounds the local part before any parsing; RFC 5321 allows 64.
const maxLocalLen = 64

// ParseRecipient parses an envelope or header address such as
// "+15551234567@mms.example.net", "<5551234567/TYPE=PLMN@MMS.example.net>"
// or `"+1 (555) 123-4567"@mms.example.net` and returns the recipient it
// names. The error is an *AddressError wrapping ErrNotMMSDomain when the
// domain is not one of opts.Domains, and ErrNotNumber when the address is
// malformed or its local part is not a number (see ParseNumber).
func ParseRecipient(addr string, opts RecipientOptions) (Recipient, error) {
	a := strings.TrimSpace(addr)
	if i := strings.LastIndexByte(a, '<'); i >= 0 && strings.HasSuffix(a, ">") {
		a = strings.TrimSpace(a[i+1 : len(a)-1])
	}
	local, domain := a, ""
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		local, domain = a[:i], a[i+1:]
		if domain == "" {
			return Recipient{}, &AddressError{Addr: addr, Err: ErrNotNumber, Reason: "empty domain"}
		}
	}
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		var ok bool
		if local, ok = unquoteLocal(local[1 : len(local)-1]); !ok {
			return Recipient{}, &AddressError{Addr: addr, Err: ErrNotNumber, Reason: "malformed quoted local part"}
		}
	}
	if len(opts.Domains) > 0 && !domainIn(domain, opts.Domains) {
		reason := fmt.Sprintf("%q is not one of the MMS domains", domain)
		if domain == "" {
			reason = "address has no domain"
		}
		return Recipient{}, &AddressError{Addr: addr, Err: ErrNotMMSDomain, Reason: reason}
	}
	e164, err := ParseNumber(local, opts.NumberOptions)
	if err != nil {
		var ae *AddressError
		if errors.As(err, &ae) {
			ae.Addr = addr
		}
		return Recipient{}, err
	}
	return Recipient{E164: e164, Address: PLMNAddress(e164), Domain: domain}, nil
}

// unquoteLocal removes the backslash escapes of an RFC 5322 quoted-string.
func unquoteLocal(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			i++
			if i == len(s) {
				return "", false
			}
			b.WriteByte(s[i])
		case '"':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func domainIn(domain string, domains []string) bool {
	domain = strings.TrimSuffix(domain, ".")
	for _, d := range domains {
		if strings.EqualFold(domain, strings.TrimSuffix(d, ".")) {
			return true
		}
	}
	return false
}

// ParseNumber parses the local part of an MMS recipient address and returns
// the number in E.164 form ("+15551234567"), or the short code itself when
// local is one of opts.ShortCodes.
//
// Accepted: "+15551234567", "15551234567" and "5551234567" (with
// DefaultRegion "US"), "+1-555-123-4567", "+1 (555) 123-4567", and any of these
// followed by "/TYPE=PLMN" (case-insensitive). Letters, extensions and any
// other character are refused before libphonenumber sees the input. The
// number must then be possible for its region (IsPossibleNumber, excluding
// local-only numbers), and valid too when opts.StrictValidity is set.
//
// A number without "+" that is not possible in DefaultRegion is tried once
// more as an international number, and accepted only if that number is
// valid (so "447911123456" works with region "US").
//
// The error is an *AddressError wrapping ErrNotNumber.
func ParseNumber(local string, opts NumberOptions) (string, error) {
	fail := func(reason string) (string, error) {
		return "", &AddressError{Addr: local, Err: ErrNotNumber, Reason: reason}
	}
	s := strings.TrimSpace(local)
	if len(s) > maxLocalLen {
		return fail("too long")
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		if !strings.EqualFold(s[i:], plmnSuffix) {
			return fail("only the /TYPE=PLMN suffix is allowed")
		}
		s = strings.TrimSpace(s[:i])
	}
	digits, plus, reason := checkLocal(s)
	if reason != "" {
		return fail(reason)
	}
	if !plus {
		for _, sc := range opts.ShortCodes {
			if sc != "" && digits == sc {
				return digits, nil
			}
		}
	}
	if len(digits) < 3 {
		return fail("too short")
	}
	if len(digits) > 17 { // 15 E.164 digits plus an international prefix
		return fail("too long")
	}

	var cands []string
	switch {
	case plus:
		cands = []string{"+" + digits}
	case opts.DefaultRegion == "":
		cands = []string{"+" + digits}
	default:
		cands = []string{digits, "+" + digits}
	}
	var why string // the reason of the first reading
	for i, c := range cands {
		num, err := phonenumbers.Parse(c, opts.DefaultRegion)
		r := ""
		switch {
		case err != nil:
			r = "not a number: " + err.Error()
		case phonenumbers.IsPossibleNumberWithReason(num) != phonenumbers.IS_POSSIBLE:
			r = possibleReason(phonenumbers.IsPossibleNumberWithReason(num))
		case (opts.StrictValidity || i > 0) && !phonenumbers.IsValidNumber(num):
			// A guessed international reading must be valid.
			r = "not a valid number"
		default:
			return phonenumbers.Format(num, phonenumbers.E164), nil
		}
		if why == "" {
			why = r
		}
	}
	return fail(why)
}

// checkLocal applies the strict grammar
//
//	local = [ "+" ] digit *( digit / "-" / "." / " " / "(" / ")" )
//
// (separators may also precede the first digit, as in "(555) 123-4567") and
// returns the digits, whether a "+" led, and a reason when s is refused.
func checkLocal(s string) (digits string, plus bool, reason string) {
	if s == "" {
		return "", false, "empty local part"
	}
	if s[0] == '+' {
		plus = true
		s = s[1:]
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '-' || c == '.' || c == ' ':
		case c == '(':
			depth++
			if depth > 1 {
				return "", false, "nested parentheses"
			}
		case c == ')':
			depth--
			if depth < 0 {
				return "", false, "unbalanced parentheses"
			}
		case c == '+':
			return "", false, `"+" is only allowed first`
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			return "", false, "letters are not allowed"
		default:
			return "", false, fmt.Sprintf("character %q is not allowed", c)
		}
	}
	if depth != 0 {
		return "", false, "unbalanced parentheses"
	}
	if b.Len() == 0 {
		return "", false, "no digits"
	}
	return b.String(), plus, ""
}

func possibleReason(r phonenumbers.ValidationResult) string {
	switch r {
	case phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return "local number without area code"
	case phonenumbers.INVALID_COUNTRY_CODE:
		return "unknown country code"
	case phonenumbers.TOO_SHORT:
		return "too short"
	case phonenumbers.TOO_LONG:
		return "too long"
	default:
		return "not a possible number"
	}
}
