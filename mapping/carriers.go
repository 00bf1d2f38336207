// Carrier boilerplate.
//
// Design note: carriers wrap a person's MMS in their own material before
// mailing it: logos, spacer GIFs and rules for an HTML page, "This message
// was sent using PIX-FLIX Messaging service from Verizon Wireless!"
// footers, "You have received an MMS" notices. None of it belongs in a
// reply. The rules are data (carriers.json, embedded), one entry per
// carrier keyed by the sender's domain, plus generic rules that apply to
// every message: tracking pixels, spacer and divider images, and the
// signature lines phones append ("Sent via BlackBerry from T-Mobile"). A
// part is dropped when all the conditions of one of its rule's matchers
// hold; text is cleaned by removing every match of the rule's patterns.
// Matching images by their pixel size rather than their byte size keeps
// small real photos: only GIF and PNG images that are 2×2 or smaller, or
// thin bars, are dropped by the generic rules.

package mapping

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif" // DecodeConfig of spacer GIFs
	_ "image/jpeg"
	_ "image/png"
	"net/mail"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

//go:embed carriers.json
var carriersJSON []byte

// CarrierRules are the boilerplate rules of all carriers. A value is
// immutable once made and safe for concurrent use.
type CarrierRules struct {
	generic  carrierRule
	carriers []*carrierRule
}

// PartMatcher selects parts to drop. Every non-zero condition must hold,
// and at least one must be set. Patterns are Go regular expressions,
// matched case-insensitively against the whole value.
type PartMatcher struct {
	Name    string `json:"name,omitempty"`     // file name, Content-Location or Content-ID
	Type    string `json:"type,omitempty"`     // media type, "image/gif"
	MaxSize int    `json:"max_size,omitempty"` // body at most this many bytes
	SHA256  string `json:"sha256,omitempty"`   // hex SHA-256 of the body, or a prefix of 8+ digits
	Text    string `json:"text,omitempty"`     // text parts: the whole (decoded) text, (?s) implied

	// Images (GIF, JPEG, PNG) by pixel size: at most MaxWidth wide, at
	// most MaxHeight high; or thin, their short side at most MaxShortSide
	// and their long side at least MinAspect times it.
	MaxWidth     int     `json:"max_width,omitempty"`
	MaxHeight    int     `json:"max_height,omitempty"`
	MaxShortSide int     `json:"max_short_side,omitempty"`
	MinAspect    float64 `json:"min_aspect,omitempty"`

	name, typ, text *regexp.Regexp
}

// CarrierRule is one carrier's entry of carriers.json: the sender domains
// it covers (a domain covers its subdomains too), the parts to drop and
// the text patterns to remove. Patterns are Go regular expressions with
// (?im) implied: ^ and $ match at line ends.
type CarrierRule struct {
	Name      string        `json:"name"`
	Domains   []string      `json:"domains"`
	DropParts []PartMatcher `json:"drop_parts,omitempty"`
	StripText []string      `json:"strip_text,omitempty"`
	// DropSubject are patterns (case-insensitive, whole subject) of
	// subjects that are the carrier's, not the person's: "Multimedia
	// message", a file name. Such a subject is removed.
	DropSubject []string `json:"drop_subject,omitempty"`
	// DropHTMLText drops the text of HTML parts: the carrier's HTML is
	// only a wrapper, the person's words come in text/plain parts.
	DropHTMLText bool `json:"drop_html_text,omitempty"`
}

type rulesFile struct {
	Generic  CarrierRule   `json:"generic"`
	Carriers []CarrierRule `json:"carriers"`
}

// carrierRule is a compiled CarrierRule; next is the generic rule that
// follows a carrier's own.
type carrierRule struct {
	CarrierRule
	strip   []*regexp.Regexp
	subject []*regexp.Regexp
	next    *carrierRule
}

var defaultRules = sync.OnceValue(func() *CarrierRules {
	r, err := LoadCarrierRules(nil)
	if err != nil {
		panic("mapping: embedded carriers.json: " + err.Error())
	}
	return r
})

// DefaultCarrierRules returns the rules of the embedded carriers.json.
func DefaultCarrierRules() *CarrierRules { return defaultRules() }

// LoadCarrierRules returns the embedded rules merged with extra, a JSON
// document of the same form as carriers.json ({"generic": {...},
// "carriers": [{"name", "domains", "drop_parts", "strip_text"}]}); nil
// extra gives the embedded rules. A carrier of extra whose name is that of
// an embedded one adds its domains, matchers and patterns to it; others
// are added, and take precedence over embedded carriers of the same
// domain. Generic matchers and patterns are added to the embedded ones.
func LoadCarrierRules(extra []byte) (*CarrierRules, error) {
	var base rulesFile
	if err := json.Unmarshal(carriersJSON, &base); err != nil {
		return nil, fmt.Errorf("mapping: carriers.json: %w", err)
	}
	if len(bytes.TrimSpace(extra)) > 0 {
		var more rulesFile
		dec := json.NewDecoder(bytes.NewReader(extra))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&more); err != nil {
			return nil, fmt.Errorf("mapping: carrier rules: %w", err)
		}
		base.Generic.DropParts = append(base.Generic.DropParts, more.Generic.DropParts...)
		base.Generic.StripText = append(base.Generic.StripText, more.Generic.StripText...)
		base.Generic.DropSubject = append(base.Generic.DropSubject, more.Generic.DropSubject...)
		var added []CarrierRule
	next:
		for _, c := range more.Carriers {
			for i := range base.Carriers {
				if b := &base.Carriers[i]; c.Name != "" && strings.EqualFold(b.Name, c.Name) {
					b.Domains = append(b.Domains, c.Domains...)
					b.DropParts = append(b.DropParts, c.DropParts...)
					b.StripText = append(b.StripText, c.StripText...)
					b.DropSubject = append(b.DropSubject, c.DropSubject...)
					b.DropHTMLText = b.DropHTMLText || c.DropHTMLText
					continue next
				}
			}
			added = append(added, c)
		}
		base.Carriers = append(added, base.Carriers...)
	}
	r := &CarrierRules{}
	if err := r.generic.compile(base.Generic); err != nil {
		return nil, err
	}
	for _, c := range base.Carriers {
		if len(c.Domains) == 0 {
			return nil, fmt.Errorf("mapping: carrier rules: carrier %q has no domains", c.Name)
		}
		cr := &carrierRule{next: &r.generic}
		if err := cr.compile(c); err != nil {
			return nil, err
		}
		r.carriers = append(r.carriers, cr)
	}
	return r, nil
}

func (c *carrierRule) compile(r CarrierRule) error {
	c.CarrierRule = r
	c.DropParts = append([]PartMatcher(nil), r.DropParts...)
	for _, s := range r.StripText {
		re, err := regexp.Compile("(?im)" + s)
		if err != nil {
			return fmt.Errorf("mapping: carrier %q: strip_text %q: %w", r.Name, s, err)
		}
		c.strip = append(c.strip, re)
	}
	for _, s := range r.DropSubject {
		re, err := regexp.Compile("(?is)^(?:" + s + ")$")
		if err != nil {
			return fmt.Errorf("mapping: carrier %q: drop_subject %q: %w", r.Name, s, err)
		}
		c.subject = append(c.subject, re)
	}
	for i := range c.DropParts {
		m := &c.DropParts[i]
		var err error
		comp := func(s, flags string) *regexp.Regexp {
			if s == "" || err != nil {
				return nil
			}
			var re *regexp.Regexp
			re, err = regexp.Compile(flags + "^(?:" + s + ")$")
			return re
		}
		m.name, m.typ, m.text = comp(m.Name, "(?i)"), comp(m.Type, "(?i)"), comp(m.Text, "(?is)")
		if err != nil {
			return fmt.Errorf("mapping: carrier %q: drop_parts[%d]: %w", r.Name, i, err)
		}
		if m.name == nil && m.typ == nil && m.text == nil && m.MaxSize == 0 && m.SHA256 == "" &&
			m.MaxWidth == 0 && m.MaxHeight == 0 && m.MaxShortSide == 0 {
			return fmt.Errorf("mapping: carrier %q: drop_parts[%d] has no condition", r.Name, i)
		}
		if m.SHA256 != "" && len(m.SHA256) < 8 {
			return fmt.Errorf("mapping: carrier %q: drop_parts[%d]: sha256 prefix shorter than 8", r.Name, i)
		}
		m.SHA256 = strings.ToLower(m.SHA256)
	}
	return nil
}

// Carrier returns the name of the carrier whose rules apply to mail from
// the address from ("15551234567@vzwpix.com", "Name <…>"), or "".
func (r *CarrierRules) Carrier(from string) string {
	if c := r.For(from); c.next != nil {
		return c.Name
	}
	return ""
}

// For returns the rule for the sender from: its carrier's followed by the
// generic one, or the generic one alone.
func (r *CarrierRules) For(from string) *carrierRule {
	dom := senderDomain(from)
	if dom != "" {
		for _, c := range r.carriers {
			for _, d := range c.Domains {
				d = strings.ToLower(strings.TrimSuffix(d, "."))
				if dom == d || strings.HasSuffix(dom, "."+d) {
					return c
				}
			}
		}
	}
	return &r.generic
}

func senderDomain(from string) string {
	a := strings.TrimSpace(from)
	if addr, err := mail.ParseAddress(a); err == nil {
		a = addr.Address
	}
	a = strings.Trim(a, "<> ")
	i := strings.LastIndexByte(a, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(a[i+1:], "."))
}

// cleanText removes the rule's patterns from s, then the generic ones,
// and normalizes the whitespace.
func (c *carrierRule) cleanText(s string) string {
	s = NormalizeText(s)
	for r := c; r != nil; r = r.next {
		for _, re := range r.strip {
			s = re.ReplaceAllString(s, "")
		}
	}
	return strings.TrimSpace(NormalizeText(s))
}

// cleanSubject returns s, or "" when it is the carrier's own subject.
func (c *carrierRule) cleanSubject(s string) string {
	s = strings.TrimSpace(s)
	for r := c; r != nil; r = r.next {
		for _, re := range r.subject {
			if re.MatchString(s) {
				return ""
			}
		}
	}
	return s
}

// dropPart reports whether p (whose decoded content is data: UTF-8 text
// for text parts) is boilerplate under the rule or the generic one.
func (c *carrierRule) dropPart(p *pdu.Part, data []byte) bool {
	var img *image.Config
	imgRead := false
	for r := c; r != nil; r = r.next {
		for i := range r.DropParts {
			m := &r.DropParts[i]
			if m.matches(p, data, func() *image.Config {
				if !imgRead {
					imgRead = true
					if cfg, _, err := image.DecodeConfig(bytes.NewReader(p.Body)); err == nil {
						img = &cfg
					}
				}
				return img
			}) {
				return true
			}
		}
	}
	return false
}

func (m *PartMatcher) matches(p *pdu.Part, data []byte, img func() *image.Config) bool {
	if m.typ != nil && !m.typ.MatchString(p.ContentType.Type) {
		return false
	}
	if m.name != nil {
		ok := false
		for _, n := range []string{p.Name(), p.ContentLocation, strings.Trim(p.ContentID, "<> ")} {
			if n != "" && (m.name.MatchString(n) || m.name.MatchString(path.Base(n))) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if m.MaxSize > 0 && len(p.Body) > m.MaxSize {
		return false
	}
	if m.text != nil && (!strings.HasPrefix(p.ContentType.Type, "text/") || !m.text.Match(bytes.TrimSpace(data))) {
		return false
	}
	if m.SHA256 != "" {
		sum := sha256.Sum256(p.Body)
		if !strings.HasPrefix(hex.EncodeToString(sum[:]), m.SHA256) {
			return false
		}
	}
	if m.MaxWidth > 0 || m.MaxHeight > 0 || m.MaxShortSide > 0 {
		cfg := img()
		if cfg == nil {
			return false
		}
		if m.MaxWidth > 0 && cfg.Width > m.MaxWidth || m.MaxHeight > 0 && cfg.Height > m.MaxHeight {
			return false
		}
		if m.MaxShortSide > 0 {
			short, long := min(cfg.Width, cfg.Height), max(cfg.Width, cfg.Height)
			if short > m.MaxShortSide || float64(long) < m.MinAspect*float64(max(short, 1)) {
				return false
			}
		}
	}
	return true
}
