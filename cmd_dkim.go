package main

import (
	"fmt"
	"io"
	"os"

	"github.com/mmsrelay/mmsrelay/mail/dkim"
)

const dkimKeygenHelp = `Dkim-keygen makes a DKIM signing key for the relay's outgoing email: an
RSA key of 2048 bits (the default) or an Ed25519 key (RFC 8463; not every
verifier knows it, so publish an RSA key too). The private key is written
in PEM (PKCS #8) to -out, created with mode 0600 and never overwritten, or
to standard output when -out is "-". The DNS record to publish is printed:
its name, SELECTOR._domainkey.DOMAIN, and its TXT value.
`

func runDKIMKeygen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("dkim-keygen", "[-type rsa|ed25519] [-selector S] [-domain D] [-out FILE]", dkimKeygenHelp)
	kind := fs.String("type", "rsa", "key type: rsa or ed25519")
	selector := fs.String("selector", "mmsrelay", "DKIM `SELECTOR`")
	domain := fs.String("domain", "mms.example.net", "signing `DOMAIN` (d=)")
	out := fs.String("out", "dkim.key", "private key `FILE`, or - for standard output")
	if st, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	if *kind != dkim.KeyRSA && *kind != dkim.KeyEd25519 {
		return usageError(fs, stderr, "-type %q: use rsa or ed25519", *kind)
	}
	if *selector == "" || *domain == "" {
		return usageError(fs, stderr, "-selector and -domain must not be empty")
	}
	priv, txt, err := dkim.GenerateKey(*kind)
	if err != nil {
		return fail(stderr, "dkim-keygen", err)
	}
	if *out == "-" {
		stdout.Write(priv)
	} else {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fail(stderr, "dkim-keygen", err)
		}
		_, werr := f.Write(priv)
		if err := f.Close(); werr == nil {
			werr = err
		}
		if werr != nil {
			os.Remove(*out)
			return fail(stderr, "dkim-keygen", werr)
		}
		fmt.Fprintf(stdout, "private key: %s\n", *out)
	}
	fmt.Fprintf(stdout, "DNS record:  %s. IN TXT\nTXT value:   %s\n", dkim.RecordName(*selector, *domain), txt)
	return exitOK
}
