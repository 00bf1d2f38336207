package dkim

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

const testMsg = "From: +15551234567 <+15551234567@mms.example.net>\r\n" +
	"To: bob@example.com\r\nSubject: Re: hello\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
	"Message-Id: <abc@mms.example.net>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
	"Hello from a phone.\r\n"

func verify(t *testing.T, signed []byte, txt string) []*msgdkim.Verification {
	t.Helper()
	lookup := func(domain string) ([]string, error) {
		if domain != RecordName("sel", "mms.example.net") {
			return nil, fmt.Errorf("no record for %s", domain)
		}
		return []string{txt}, nil
	}
	v, err := msgdkim.VerifyWithOptions(bytes.NewReader(signed), &msgdkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	return v
}

func TestSignVerify(t *testing.T) {
	for _, kind := range []string{KeyRSA, KeyEd25519} {
		t.Run(kind, func(t *testing.T) {
			privPEM, txt, err := GenerateKey(kind)
			if err != nil {
				t.Fatalf("GenerateKey(%q) = %v", kind, err)
			}
			if !strings.HasPrefix(txt, "v=DKIM1; k="+kind+"; p=") {
				t.Errorf("TXT = %q", txt)
			}
			key, err := ParseKey(privPEM)
			if err != nil {
				t.Fatalf("ParseKey = %v", err)
			}
			signed, err := Sign([]byte(testMsg), Options{Domain: "mms.example.net", Selector: "sel", Key: key})
			if err != nil {
				t.Fatalf("Sign = %v", err)
			}
			if !bytes.HasPrefix(signed, []byte("DKIM-Signature: ")) || !bytes.HasSuffix(signed, []byte(testMsg)) {
				t.Fatalf("Sign output does not prepend a signature:\n%s", signed)
			}
			v := verify(t, signed, txt)
			if len(v) != 1 || v[0].Err != nil || v[0].Domain != "mms.example.net" {
				t.Fatalf("Verify = %+v, want one valid signature", v[0])
			}
			// A changed body fails.
			bad := bytes.Replace(signed, []byte("Hello from"), []byte("Hullo from"), 1)
			if v := verify(t, bad, txt); len(v) != 1 || v[0].Err == nil {
				t.Errorf("Verify(tampered) = %+v, want a failure", v[0])
			}
			// Another key's record fails.
			_, other, _ := GenerateKey(kind)
			if v := verify(t, signed, other); len(v) != 1 || v[0].Err == nil {
				t.Errorf("Verify(other key) = %+v, want a failure", v[0])
			}
		})
	}
}

func TestParseKeyPKCS1(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	key, err := ParseKey(b)
	if err != nil {
		t.Fatalf("ParseKey(PKCS #1) = %v", err)
	}
	txt, _ := TXTRecord(key.Public())
	signed, err := Sign([]byte(testMsg), Options{Domain: "mms.example.net", Selector: "sel", Key: key, HeaderKeys: []string{"From", "Subject"}})
	if err != nil {
		t.Fatal(err)
	}
	if v := verify(t, signed, txt); len(v) != 1 || v[0].Err != nil || !strings.Contains(string(signed), "h=From:Subject") {
		t.Errorf("Verify(PKCS #1 key) = %+v", v[0])
	}
}

func TestKeyErrors(t *testing.T) {
	if _, _, err := GenerateKey("dsa"); !errors.Is(err, ErrKeyType) {
		t.Errorf("GenerateKey(dsa) = %v, want ErrKeyType", err)
	}
	if _, err := ParseKey([]byte("not pem")); err == nil {
		t.Error("ParseKey(garbage) = nil error")
	}
	if _, err := ParseKey([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")); !errors.Is(err, ErrKeyType) {
		t.Errorf("ParseKey(certificate) = %v, want ErrKeyType", err)
	}
	if _, err := Sign([]byte(testMsg), Options{Domain: "d"}); err == nil {
		t.Error("Sign without key = nil error")
	}
	if got := RecordName("s1", "example.net."); got != "s1._domainkey.example.net" {
		t.Errorf("RecordName = %q", got)
	}
}
