package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// convertToEmail is "convert -to email": it reads an MMS (PDU, MM4 or MM3)
// and writes the reply email.
func convertToEmail(fs *flag.FlagSet, cfgPath, replyDomain, sender string, stdin io.Reader, stdout, stderr io.Writer) int {
	if fs.NArg() > 1 {
		return usageError(fs, stderr, "one input file at most, got %d", fs.NArg())
	}
	region := "US"
	if cfgPath != "" {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return fail(stderr, "convert", err)
		}
		if cfg.MMS.DefaultRegion != "" {
			region = cfg.MMS.DefaultRegion
		}
		if replyDomain == "" {
			replyDomain = cfg.Reply.Domain
		}
		if replyDomain == "" && len(cfg.MMS.Domains) > 0 {
			replyDomain = cfg.MMS.Domains[0]
		}
	}
	if replyDomain == "" {
		replyDomain = "mms.invalid"
	}
	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	in, err := readInput(name, stdin)
	if err != nil {
		return fail(stderr, "convert", err)
	}
	m, err := readMMS(in)
	if err != nil {
		return fail(stderr, "convert", err)
	}
	if sender == "" {
		for _, a := range append(append([]string{}, m.To...), m.Cc...) {
			if _, isNumber := mapping.SenderNumber(a, region); !isNumber && strings.Contains(a, "@") {
				sender = a
				break
			}
		}
	}
	if sender == "" {
		return fail(stderr, "convert", errors.New("no email recipient in the MMS: give -sender ADDR"))
	}
	out, err := mapping.ToEmail(m, mapping.EmailOutOptions{ReplyDomain: replyDomain, To: sender, Region: region})
	if err != nil {
		return fail(stderr, "convert", err)
	}
	if _, err := stdout.Write(out); err != nil {
		return fail(stderr, "convert", err)
	}
	return exitOK
}

// readMMS reads an MM4_forward.REQ, an MM3 email or a binary PDU.
func readMMS(in []byte) (*mapping.MMS, error) {
	if looksLikeEmail(in) {
		m4, err := mm4.Parse(in)
		switch {
		case err == nil && !m4.IsType(mm4.ForwardReq):
			return nil, fmt.Errorf("an %s carries no message", m4.Type)
		case err == nil:
			return mapping.MMSFromMM4(m4)
		case errors.Is(err, mm4.ErrNotMM4):
			return mapping.MMSFromEmail(in)
		default:
			return nil, err
		}
	}
	p, err := decodeInput(in, pdu.Decoder{})
	if err != nil {
		return nil, err
	}
	if p.Type != pdu.TypeRetrieveConf && p.Type != pdu.TypeSendReq {
		return nil, fmt.Errorf("an %s PDU carries no message (want m-retrieve-conf or m-send-req)", p.Type)
	}
	return mapping.MMSFromPDU(p), nil
}
