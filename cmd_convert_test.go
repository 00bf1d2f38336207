package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

const convertMail = "From: Zoë <zoe@example.com>\r\nTo: +15551234567@mms.example.net, Bob <bob@example.com>\r\n" +
	"Cc: 5557654321@mms.example.net\r\nBcc: +447911123456@mms.example.net\r\nSubject: Grüße\r\n" +
	"Date: Wed, 25 Nov 2026 09:00:00 +0000\r\nMessage-ID: <c1@example.com>\r\n\r\nHello phone!\r\n"

// pduDissectTool returns shared/tools/pdu-dissect when it and tshark are
// there; the test is skipped otherwise, or fails under
// MMSRELAY_REQUIRE_TSHARK=1.
func pduDissectTool(t *testing.T) string {
	t.Helper()
	tool := filepath.Join(testcorpus.SharedDir(), "tools", "pdu-dissect")
	_, err1 := os.Stat(tool)
	_, err2 := exec.LookPath("tshark")
	if err1 != nil || err2 != nil {
		if os.Getenv("MMSRELAY_REQUIRE_TSHARK") == "1" {
			t.Fatalf("pdu-dissect or tshark missing (%v, %v) and MMSRELAY_REQUIRE_TSHARK=1", err1, err2)
		}
		t.Skipf("pdu-dissect or tshark missing: %v %v", err1, err2)
	}
	return tool
}

func TestConvert(t *testing.T) {
	code, out, errs := runCmd(t, []byte(convertMail), "convert")
	if code != 0 {
		t.Fatalf("convert = %d: %s", code, errs)
	}
	m, err := pdu.Decoder{Strict: true}.Decode([]byte(out))
	if err != nil {
		t.Fatalf("strict decode of convert's output: %v", err)
	}
	if m.Type != pdu.TypeSendReq || len(m.To) != 1 || m.To[0].String() != "+15551234567/TYPE=PLMN" ||
		len(m.Cc) != 1 || m.Cc[0].String() != "+15557654321/TYPE=PLMN" || len(m.Bcc) != 0 ||
		m.Subject.String() != "Grüße" || m.From.Address.String() != "Zoë <zoe@example.com>" {
		t.Errorf("PDU = to %v cc %v bcc %v subject %q from %q", m.To, m.Cc, m.Bcc, m.Subject.String(), m.From.Address.String())
	}
	if !strings.Contains(errs, "1 Bcc number(s) left out") {
		t.Errorf("stderr = %q, want the Bcc note", errs)
	}
	// -rcpt overrides; retrieve-conf; MM4.
	code, out, errs = runCmd(t, []byte(convertMail), "convert", "-rcpt", "+447911123456", "-type", "retrieve-conf")
	if m, err = pdu.Decode([]byte(out)); code != 0 || err != nil || m.Type != pdu.TypeRetrieveConf || len(m.To) != 1 ||
		m.To[0].String() != "+447911123456/TYPE=PLMN" || m.MessageID == "" {
		t.Errorf("-rcpt -type retrieve-conf = %d %v %+v %s", code, err, m, errs)
	}
	code, out, errs = runCmd(t, []byte(convertMail), "convert", "-to", "mm4")
	mm, err := mm4.Parse([]byte(out))
	if code != 0 || err != nil || mm.Type != mm4.ForwardReq || mm.Subject != "Grüße" || len(mm.To) != 2 {
		t.Fatalf("-to mm4 = %d %v %+v %s", code, err, mm, errs)
	}
	if _, parts, err := mm.Parts(mm4.Limits{}); err != nil || len(parts) != 2 || parts[0].ContentType.Type != "application/smil" {
		t.Errorf("MM4 parts = %+v, %v", parts, err)
	}
	// No recipient, or not an email: one line, exit 1.
	code, _, errs = runCmd(t, []byte("From: a@example.com\r\nTo: bob@example.com\r\n\r\nhi\r\n"), "convert")
	if code != 1 {
		t.Errorf("no recipient: exit %d", code)
	}
	oneErrorLine(t, "no recipient", errs, "no valid recipient")
	code, _, errs = runCmd(t, []byte("\x8c\x80binary"), "convert")
	if code != 1 {
		t.Errorf("binary input: exit %d", code)
	}
	oneErrorLine(t, "binary input", errs, "not an email")
	// With a config, only its MMS domains count.
	cfg := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(cfg, []byte("[mms]\ndomains = [\"mms.other.net\"]\n"), 0o644)
	code, _, errs = runCmd(t, []byte(convertMail), "convert", "-config", cfg)
	if code != 1 {
		t.Errorf("config with other domains: exit %d (%s)", code, errs)
	}
	if code, _, _ := runCmd(t, nil, "convert", "-to", "mm7"); code != 2 {
		t.Errorf("-to mm7: exit %d, want 2", code)
	}
}

// TestConvertCorpusDissect converts real-world emails and has Wireshark's
// MMS dissector read every PDU: all must decode cleanly there too.
func TestConvertCorpusDissect(t *testing.T) {
	tool := pduDissectTool(t)
	dir := t.TempDir()
	var files []string
	for i, f := range testcorpus.Files(t, "eml") {
		if i%6 != 0 {
			continue // a sixth of them: tshark takes about a second a file
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		code, out, errs := runCmd(t, raw, "convert", "-rcpt", "+15551234567", "-profile", "basic")
		if code != 0 {
			if !strings.Contains(errs, "nothing in the email") {
				t.Errorf("%s: convert = %d %s", filepath.Base(f), code, errs)
			}
			continue
		}
		if len(out) > 300*1024 {
			t.Errorf("%s: %d bytes, over the basic profile", filepath.Base(f), len(out))
		}
		p := filepath.Join(dir, filepath.Base(f)+".mms")
		if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	if len(files) < 20 {
		t.Fatalf("only %d emails converted", len(files))
	}
	// Two batches at once, one per core.
	var stderr [2]bytes.Buffer
	var errs [2]error
	done := make(chan int)
	for b := 0; b < 2; b++ {
		go func(b int) {
			var batch []string
			for i := b; i < len(files); i += 2 {
				batch = append(batch, files[i])
			}
			cmd := exec.Command(tool, append([]string{"--quiet"}, batch...)...)
			cmd.Stderr = &stderr[b]
			errs[b] = cmd.Run()
			done <- b
		}(b)
	}
	<-done
	<-done
	all := stderr[0].String() + stderr[1].String()
	ok := strings.Count(all, ": OK (m-send-req)")
	if errs[0] != nil || errs[1] != nil || ok != len(files) {
		t.Errorf("pdu-dissect: %d of %d OK (%v %v):\n%s", ok, len(files), errs[0], errs[1], all)
	}
	t.Logf("%d converted corpus emails decode cleanly in Wireshark", ok)
}
