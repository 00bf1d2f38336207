// Package dkim signs the emails the relay sends (RFC 6376) and makes the
// keys for it. Signing is done by github.com/emersion/go-msgauth/dkim with
// relaxed/relaxed canonicalization and SHA-256; keys are RSA (2048 bits)
// or Ed25519 (RFC 8463), kept in PEM files (PKCS #8, or PKCS #1 for RSA).
package dkim

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

// Key types accepted by GenerateKey.
const (
	KeyRSA     = "rsa"
	KeyEd25519 = "ed25519"
)

// RSABits is the size of the RSA keys GenerateKey makes.
const RSABits = 2048

// DefaultHeaderKeys are the header fields signed when Options.HeaderKeys
// is nil (RFC 6376 §5.4.1), From first.
var DefaultHeaderKeys = []string{"From", "To", "Cc", "Subject", "Date", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}

// Options says who signs.
type Options struct {
	Domain   string        // the d= domain, "mms.example.net"
	Selector string        // the s= selector, "mms2026"
	Key      crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey (see ParseKey)
	// HeaderKeys are the fields to sign; nil means DefaultHeaderKeys.
	HeaderKeys []string
	// Expiration is the x= time; zero means none.
	Expiration time.Time
}

// ErrKeyType is returned (wrapped) for keys that are neither RSA nor
// Ed25519, and for RSA keys shorter than 1024 bits.
var ErrKeyType = errors.New("dkim: unsupported key")

// Sign returns msg (an RFC 5322 message with CRLF line ends) with a
// DKIM-Signature field prepended.
func Sign(msg []byte, opts Options) ([]byte, error) {
	if opts.Domain == "" || opts.Selector == "" || opts.Key == nil {
		return nil, errors.New("dkim: Sign needs a domain, a selector and a key")
	}
	if err := checkKey(opts.Key.Public()); err != nil {
		return nil, err
	}
	keys := opts.HeaderKeys
	if keys == nil {
		keys = DefaultHeaderKeys
	}
	so := &msgdkim.SignOptions{
		Domain:                 opts.Domain,
		Selector:               opts.Selector,
		Signer:                 opts.Key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: msgdkim.CanonicalizationRelaxed,
		BodyCanonicalization:   msgdkim.CanonicalizationRelaxed,
		HeaderKeys:             keys,
		Expiration:             opts.Expiration,
	}
	var out bytes.Buffer
	if err := msgdkim.Sign(&out, bytes.NewReader(msg), so); err != nil {
		return nil, fmt.Errorf("dkim: signing: %w", err)
	}
	return out.Bytes(), nil
}

func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 1024 {
			return fmt.Errorf("%w: RSA key of %d bits", ErrKeyType, k.N.BitLen())
		}
		return nil
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("%w: %T", ErrKeyType, pub)
}

// ParseKey reads a private key from PEM: "PRIVATE KEY" (PKCS #8, RSA or
// Ed25519) or "RSA PRIVATE KEY" (PKCS #1).
func ParseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("dkim: no PEM block in the key file")
	}
	var key any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block %q", ErrKeyType, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("dkim: reading the key: %w", err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrKeyType, key)
	}
	if err := checkKey(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// GenerateKey makes a key of kind KeyRSA (2048 bits) or KeyEd25519 and
// returns it as a PKCS #8 PEM block, and the value of its DNS TXT record
// ("v=DKIM1; k=rsa; p=…").
func GenerateKey(kind string) (privPEM []byte, dnsTXT string, err error) {
	var key crypto.Signer
	switch strings.ToLower(kind) {
	case KeyRSA, "":
		key, err = rsa.GenerateKey(rand.Reader, RSABits)
	case KeyEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, "", fmt.Errorf("%w: key type %q (use rsa or ed25519)", ErrKeyType, kind)
	}
	if err != nil {
		return nil, "", fmt.Errorf("dkim: generating the key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", fmt.Errorf("dkim: encoding the key: %w", err)
	}
	txt, err := TXTRecord(key.Public())
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), txt, nil
}

// TXTRecord returns the DNS TXT record value publishing pub: for RSA the
// DER SubjectPublicKeyInfo, for Ed25519 the raw 32 octets (RFC 8463 §4.2),
// in base64.
func TXTRecord(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", fmt.Errorf("dkim: encoding the public key: %w", err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k), nil
	}
	return "", fmt.Errorf("%w: %T", ErrKeyType, pub)
}

// RecordName returns the DNS name of the key record, "SELECTOR._domainkey.DOMAIN".
func RecordName(selector, domain string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".")
}
