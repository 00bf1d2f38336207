package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mmsrelay/mmsrelay/adapt"
	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

const convertHelp = `Convert reads an email (RFC 5322) from FILE, or standard input when FILE
is "-" or absent, converts it into an MMS the way the relay does, and
writes it to standard output: the binary PDU (-to pdu, the default) or the
MM4_forward.REQ message (-to mm4). The message is adapted to the profile's
limits as they count on that interface (the PDU's bytes, or the whole MIME
message with its base64).

Recipients are the -rcpt numbers when given; otherwise the To and Cc
addresses whose local part is a number (at the configured MMS domains with
-config, at any domain without). Without -config, numbers without a
country code are read as US numbers. All the numbers share one group MMS;
Bcc numbers, which the relay sends one by one, are left out unless they
are the only ones (then the first is used) and a line on standard error
says so.

With -to email it goes the other way: FILE holds an MMS (a binary PDU, an
MM4_forward.REQ, or a carrier's MM3 email, carrier boilerplate removed)
and convert writes the reply email the relay would send: From the
sender's number at -reply-domain, To -sender (default: the MMS's first
email recipient), the text as a UTF-8 body and the media as attachments.

Convert reads no configuration unless -config is given. With no valid
recipient, or input that cannot be read, it fails with one line on
standard error.
`

func runConvert(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("convert", "[-config FILE] [-to pdu|mm4|email] [-reply-domain D] [-sender ADDR] [-profile NAME] [-type send-req|retrieve-conf] [-rcpt NUMBER]... [FILE|-]", convertHelp)
	cfgPath := fs.String("config", "", "read MMS domains, region and profiles from `FILE`")
	to := fs.String("to", "pdu", "output: pdu (binary M-Send.req/M-Retrieve.conf), mm4 (MM4_forward.REQ), or email (an MMS in, the reply email out)")
	replyDomain := fs.String("reply-domain", "", "-to email: `DOMAIN` of the From address (default: the config's reply or first MMS domain, else mms.invalid)")
	sender := fs.String("sender", "", "-to email: `ADDR` the email goes to (default: the MMS's first email recipient)")
	profName := fs.String("profile", "default", "content profile: default, basic, large, or one of the config")
	typ := fs.String("type", "send-req", "PDU type: send-req or retrieve-conf")
	var rcpts multiFlag
	fs.Var(&rcpts, "rcpt", "recipient `NUMBER` (repeatable); overrides the email's addresses")
	if st, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() > 1 {
		return usageError(fs, stderr, "one input file at most, got %d", fs.NArg())
	}
	var ptype pdu.MessageType
	switch *typ {
	case "send-req", "m-send-req":
		ptype = pdu.TypeSendReq
	case "retrieve-conf", "m-retrieve-conf":
		ptype = pdu.TypeRetrieveConf
	default:
		return usageError(fs, stderr, "-type %q: use send-req or retrieve-conf", *typ)
	}
	iface := mapping.InterfacePDU
	switch *to {
	case "pdu":
	case "mm4":
		iface = mapping.InterfaceMM4
	case "email":
		return convertToEmail(fs, *cfgPath, *replyDomain, *sender, stdin, stdout, stderr)
	default:
		return usageError(fs, stderr, "-to %q: use pdu, mm4 or email", *to)
	}
	var cfg *config.Config
	ropts := mapping.RecipientOptions{NumberOptions: mapping.NumberOptions{DefaultRegion: "US"}}
	convOpts := mapping.ConvertOptions{Type: ptype, Interface: iface, SubjectMaxChars: 40}
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return fail(stderr, "convert", err)
		}
		ropts = mapping.RecipientOptions{Domains: cfg.MMS.Domains, NumberOptions: mapping.NumberOptions{
			DefaultRegion: cfg.MMS.DefaultRegion, ShortCodes: cfg.MMS.ShortCodes, StrictValidity: cfg.MMS.StrictNumbers}}
		convOpts.SubjectMaxChars = cfg.MMS.SubjectMaxChars
		convOpts.Expiry = cfg.MMS.Expiry.Duration
		convOpts.DeliveryReport = cfg.MMS.DeliveryReport
		convOpts.MessageClass = cfg.MMS.MessageClass
	}
	prof, ok := lookupProfile(cfg, *profName)
	if !ok {
		return usageError(fs, stderr, "-profile %q: no such profile", *profName)
	}
	prof.Transcoder = newTranscoder(cfg) // media: [media] transcode, with -config
	convOpts.Profile = prof
	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	in, err := readInput(name, stdin)
	if err != nil {
		return fail(stderr, "convert", err)
	}
	email, err := mapping.ParseEmail(bytes.NewReader(in), mapping.EmailOptions{KeepHistory: cfg != nil && !cfg.MMS.StripQuotes})
	if err != nil {
		return fail(stderr, "convert", err)
	}
	if !looksLikeEmail(in) && email.From == nil && len(email.To) == 0 {
		return fail(stderr, "convert", errors.New("the input is not an email (no header block)"))
	}
	list, note, err := convertRecipients(email, rcpts, ropts)
	if err != nil {
		return fail(stderr, "convert", err)
	}
	if note != "" {
		fmt.Fprintf(stderr, "mmsrelay convert: %s\n", note)
	}
	// The identifiers are chosen here, so that the MM4 message is sized
	// as it is written.
	convOpts.TransactionID = mapping.NewID()
	if iface == mapping.InterfaceMM4 {
		fo := mm4.ForwardOptions{TransactionID: convOpts.TransactionID, MessageID: convOpts.TransactionID + "@mmsrelay"}
		if ptype == pdu.TypeRetrieveConf {
			// The M-Retrieve.conf's Message-ID is the identifier given.
			fo.MessageID = convOpts.TransactionID
		}
		for _, r := range list {
			fo.Recipients = append(fo.Recipients, r.E164)
		}
		convOpts.Forward = fo
	}
	adapt.Init()
	conv, err := mapping.ToMMS(context.Background(), email, list, convOpts)
	if err != nil {
		return fail(stderr, "convert", err)
	}
	for _, d := range conv.Dropped {
		fmt.Fprintf(stderr, "mmsrelay convert: not sent: %s\n", d.Note)
	}
	var out []byte
	if iface == mapping.InterfaceMM4 {
		var buf bytes.Buffer
		if err := mm4.WriteForward(&buf, mm4.NewForward(conv.MMS, convOpts.Forward)); err != nil {
			return fail(stderr, "convert", err)
		}
		out = buf.Bytes()
	} else if out, err = conv.MMS.Append(nil); err != nil {
		return fail(stderr, "convert", err)
	}
	if _, err := stdout.Write(out); err != nil {
		return fail(stderr, "convert", err)
	}
	return exitOK
}

// convertRecipients picks the numbers: -rcpt ones, else the email's To and
// Cc numbers, else its first Bcc number.
func convertRecipients(e *mapping.Email, flags []string, opts mapping.RecipientOptions) ([]mapping.MMSRecipient, string, error) {
	if len(flags) > 0 {
		var out []mapping.MMSRecipient
		for _, f := range flags {
			n, err := mapping.ParseNumber(strings.TrimSpace(f), opts.NumberOptions)
			if err != nil {
				return nil, "", fmt.Errorf("-rcpt %s: %w", f, err)
			}
			out = append(out, mapping.MMSRecipient{E164: n})
		}
		return out, "", nil
	}
	var out []mapping.MMSRecipient
	seen := map[string]bool{}
	add := func(list []string, kind mapping.RecipientKind) {
		for _, a := range list {
			rc, err := mapping.ParseRecipient(a, opts)
			if err != nil || seen[rc.E164] {
				continue
			}
			seen[rc.E164] = true
			out = append(out, mapping.MMSRecipient{E164: rc.E164, Kind: kind})
		}
	}
	add(e.To, mapping.KindTo)
	add(e.Cc, mapping.KindCc)
	var bcc []mapping.MMSRecipient
	for _, a := range e.Bcc {
		if rc, err := mapping.ParseRecipient(a, opts); err == nil && !seen[rc.E164] {
			seen[rc.E164] = true
			bcc = append(bcc, mapping.MMSRecipient{E164: rc.E164, Kind: mapping.KindBcc})
		}
	}
	note := ""
	if len(out) == 0 && len(bcc) > 0 {
		out = bcc[:1]
		bcc = bcc[1:]
	}
	if len(bcc) > 0 {
		note = fmt.Sprintf("%d Bcc number(s) left out: the relay sends each its own MMS (use -rcpt to convert for one)", len(bcc))
	}
	if len(out) == 0 {
		return nil, "", errors.New("no valid recipient: no To, Cc or Bcc address is a phone number (give -rcpt NUMBER)")
	}
	return out, note, nil
}

// newTranscoder returns the audio and video transcoder that cfg's [media]
// section configures, or nil when cfg is nil or transcoding is off.
func newTranscoder(cfg *config.Config) *adapt.Transcoder {
	if cfg == nil || !cfg.Media.Transcode {
		return nil
	}
	return &adapt.Transcoder{FFmpeg: cfg.Media.FFmpeg, FFprobe: cfg.Media.FFprobe, Timeout: cfg.Media.Timeout.Duration}
}

// lookupProfile finds a profile among the built-in ones and cfg's.
func lookupProfile(cfg *config.Config, name string) (adapt.Profile, bool) {
	p, ok := adapt.LookupProfile(name)
	if cfg == nil {
		return p, ok
	}
	for _, c := range cfg.Profiles {
		if c.Name != name {
			continue
		}
		if !ok {
			p, _ = adapt.LookupProfile("default")
			p.Name, ok = name, true
		}
		if c.MaxMessageBytes > 0 {
			p.MaxMessageBytes = c.MaxMessageBytes
		}
		if c.MaxWidth > 0 {
			p.MaxWidth = c.MaxWidth
		}
		if c.MaxHeight > 0 {
			p.MaxHeight = c.MaxHeight
		}
		if len(c.AllowedTypes) > 0 {
			p.AllowedTypes = c.AllowedTypes
		}
		if c.MaxTextBytes > 0 {
			p.MaxTextBytes = c.MaxTextBytes
		}
		if c.MaxPixels > 0 {
			p.MaxPixels = c.MaxPixels
		}
	}
	return p, ok
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
