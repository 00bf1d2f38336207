package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mail/dkim"
	"github.com/mmsrelay/mmsrelay/mapping"
)

func TestDKIMKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"rsa", "ed25519"} {
		out := filepath.Join(dir, kind+".key")
		code, stdout, errs := runCmd(t, nil, "dkim-keygen", "-type", kind, "-selector", "s1", "-domain", "mms.example.net", "-out", out)
		if code != 0 || errs != "" {
			t.Fatalf("dkim-keygen -type %s = %d, stderr %q", kind, code, errs)
		}
		if !strings.Contains(stdout, "s1._domainkey.mms.example.net. IN TXT") || !strings.Contains(stdout, "v=DKIM1; k="+kind+"; p=") {
			t.Errorf("dkim-keygen -type %s printed %q", kind, stdout)
		}
		st, err := os.Stat(out)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode())
		}
		b, _ := os.ReadFile(out)
		key, err := dkim.ParseKey(b)
		if err != nil {
			t.Fatalf("ParseKey(written key) = %v", err)
		}
		// The printed record is that of the written key.
		txt, _ := dkim.TXTRecord(key.Public())
		if !strings.Contains(stdout, txt) {
			t.Errorf("printed record is not the key's %q", txt)
		}
		// Never overwritten.
		code, stdout, errs = runCmd(t, nil, "dkim-keygen", "-type", kind, "-out", out)
		if code != 1 || stdout != "" {
			t.Errorf("dkim-keygen over an existing file = %d, stdout %q", code, stdout)
		}
		oneErrorLine(t, "dkim-keygen over an existing file", errs, "file exists")
		if b2, _ := os.ReadFile(out); !bytes.Equal(b, b2) {
			t.Error("dkim-keygen overwrote the key")
		}
	}
	code, stdout, errs := runCmd(t, nil, "dkim-keygen", "-type", "ed25519", "-out", "-")
	if code != 0 || !strings.HasPrefix(stdout, "-----BEGIN PRIVATE KEY-----") || !strings.Contains(stdout, "mmsrelay._domainkey.") {
		t.Errorf("dkim-keygen -out - = %d %q %q", code, stdout, errs)
	}
	code, _, errs = runCmd(t, nil, "dkim-keygen", "-type", "dsa")
	if code != 2 || !strings.Contains(errs, `-type "dsa"`) {
		t.Errorf("dkim-keygen -type dsa = %d, stderr %q", code, errs)
	}
}

func parseOut(t *testing.T, out string) *mapping.Email {
	t.Helper()
	e, err := mapping.ParseEmail(strings.NewReader(out), mapping.EmailOptions{})
	if err != nil || len(e.Notes) > 0 {
		t.Fatalf("ParseEmail(convert output) = %v, notes %q", err, e.Notes)
	}
	return e
}

func TestConvertToEmail(t *testing.T) {
	mm3 := filepath.Join(testcorpus.Dir(t, "eml/mms2r"), "verizon-image-02.mail")
	code, out, errs := runCmd(t, nil, "convert", "-to", "email", "-reply-domain", "reply.example", "-sender", "bob@example.com", mm3)
	if code != 0 || errs != "" {
		t.Fatalf("convert -to email (MM3) = %d, stderr %q", code, errs)
	}
	e := parseOut(t, out)
	if e.From == nil || e.From.Address != "+17018675309@reply.example" || len(e.To) != 1 || e.To[0] != "bob@example.com" ||
		e.Text != "? Weird" || e.Subject != "Pic" || len(e.Media) != 1 || e.Media[0].Name != "04-09-07_1114.jpg" {
		t.Errorf("convert -to email (MM3) = from %v to %v subject %q text %q media %d", e.From, e.To, e.Subject, e.Text, len(e.Media))
	}

	// A PDU from standard input; the email recipient defaults to the MMS's.
	pduFile := corpusFile(t, "mms-engine/test_mms_codec__m-retrieve_2.conf")
	in, err := os.ReadFile(pduFile)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd(t, in, "convert", "-to", "email", "-sender", "zoe@example.com", "-")
	if code != 0 || errs != "" {
		t.Fatalf("convert -to email (PDU) = %d, stderr %q", code, errs)
	}
	if e := parseOut(t, out); e.From.Address != "+358500000000@mms.invalid" || !strings.HasPrefix(e.Text, "Входит Пушкин") {
		t.Errorf("convert -to email (PDU) = from %v text %q", e.From, e.Text)
	}

	// An MM4_forward.REQ whose recipient is an email address.
	mm4msg := "X-Mms-3GPP-MMS-Version: 6.3.0\r\nX-Mms-Message-Type: MM4_forward.REQ\r\n" +
		"X-Mms-Transaction-ID: t1\r\nX-Mms-Message-ID: m1\r\nFrom: +447911123456/TYPE=PLMN\r\n" +
		"To: alice@example.org\r\nSubject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Alice\r\n"
	code, out, errs = runCmd(t, []byte(mm4msg), "convert", "-to", "email", "-reply-domain", "r.example")
	if code != 0 || errs != "" {
		t.Fatalf("convert -to email (MM4) = %d, stderr %q", code, errs)
	}
	if e := parseOut(t, out); e.From.Address != "+447911123456@r.example" || e.To[0] != "alice@example.org" || e.Text != "Hello Alice" {
		t.Errorf("convert -to email (MM4) = from %v to %v text %q", e.From, e.To, e.Text)
	}

	for _, tc := range []struct {
		name string
		in   []byte
		args []string
		want string
	}{
		{"no email recipient", []byte(strings.Replace(mm4msg, "alice@example.org", "+15551234567/TYPE=PLMN", 1)), nil, "-sender"},
		{"notification", mustRead(t, corpusFile(t, "mms-engine/test_mms_codec__m-notification_1.ind")), []string{"-sender", "a@b.c"}, "carries no message"},
		{"garbage", []byte{0x01, 0x02}, []string{"-sender", "a@b.c"}, "not an MMS PDU"},
	} {
		code, out, errs := runCmd(t, tc.in, append([]string{"convert", "-to", "email"}, tc.args...)...)
		if code != 1 || out != "" {
			t.Errorf("%s: convert -to email = %d, stdout %q", tc.name, code, out)
		}
		oneErrorLine(t, tc.name, errs, tc.want)
	}
	if code, _, errs := runCmd(t, nil, "convert", "-to", "fax"); code != 2 || !strings.Contains(errs, "pdu, mm4 or email") {
		t.Errorf("convert -to fax = %d %q", code, errs)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
