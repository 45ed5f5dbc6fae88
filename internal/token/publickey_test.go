package token

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestIVS_ImportPublicKeyAcceptsP384(t *testing.T) {
	priv := mustECKey(t, elliptic.P384())
	material := publicPEM(t, &priv.PublicKey)
	for name, in := range map[string]string{
		"as openssl prints it":  material,
		"no final newline":      strings.TrimSuffix(material, "\n"),
		"CRLF line endings":     strings.ReplaceAll(material, "\n", "\r\n"),
		"surrounded by blanks":  "\n  \n" + material + "\n\n \t\n",
		"body on one long line": oneLineBody(material),
	} {
		t.Run(name, func(t *testing.T) {
			pub, err := ParsePublicKeyPEM(in)
			if err != nil {
				t.Fatal(err)
			}
			if !pub.Equal(&priv.PublicKey) {
				t.Error("a different key came out")
			}
		})
	}
}

func oneLineBody(material string) string {
	lines := strings.Split(strings.TrimSpace(material), "\n")
	return lines[0] + "\n" + strings.Join(lines[1:len(lines)-1], "") + "\n" + lines[len(lines)-1] + "\n"
}

// ImportPublicKey takes an ECDSA P-384 public key only; everything else is
// refused with a message that says what it got.
func TestIVS_ImportPublicKeyRejects(t *testing.T) {
	p384 := mustECKey(t, elliptic.P384())
	good := publicPEM(t, &p384.PublicKey)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(key any) string {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	sec1, err := x509.MarshalECPrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p384.PublicKey, p384)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Split(good, "\n")

	for name, tc := range map[string]struct{ in, says string }{
		"RSA":                     {publicPEM(t, &rsaKey.PublicKey), "must be an ECDSA P-384 public key, got RSA"},
		"RSA PKCS#1":              {string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})), "got RSA"},
		"P-256":                   {publicPEM(t, &mustECKey(t, elliptic.P256()).PublicKey), "got ECDSA P-256"},
		"P-521":                   {publicPEM(t, &mustECKey(t, elliptic.P521()).PublicKey), "got ECDSA P-521"},
		"Ed25519":                 {publicPEM(t, edPub), "got Ed25519"},
		"X25519":                  {publicPEM(t, x25519.PublicKey()), "got X25519"},
		"PKCS#8 private key":      {pkcs8(p384), "is a private key (PRIVATE KEY)"},
		"SEC 1 private key":       {string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})), "is a private key (EC PRIVATE KEY)"},
		"Ed25519 private key":     {pkcs8(edPriv), "is a private key"},
		"private then public key": {pkcs8(p384) + good, "is a private key"},
		"certificate":             {string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert})), "is a certificate"},
		"two public keys":         {good + good, "exactly one PEM block"},
		"broken block then good":  {"-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n" + good, "exactly one PEM block"},
		"garbage":                 {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI user@host", "is not PEM"},
		"empty":                   {"", "is empty"},
		"blank":                   {" \n\t", "is empty"},
		"trailing junk":           {good + "junk", "data after the PEM block"},
		"leading junk":            {"my key:\n" + good, "text before the PEM block"},
		"other block type":        {strings.ReplaceAll(good, "PUBLIC KEY", "EC PARAMETERS"), `got "EC PARAMETERS"`},
		"unterminated":            {strings.Join(body[:len(body)-2], "\n"), "is not valid PEM"},
		"bad base64 body":         {"-----BEGIN PUBLIC KEY-----\n@@@@\n-----END PUBLIC KEY-----\n", "is not valid PEM"},
		"truncated DER":           {string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustDER(t, &p384.PublicKey)[:60]})), "must be an ECDSA P-384 public key"},
		"DER with trailing bytes": {string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: append(mustDER(t, &p384.PublicKey), 0)})), "must be an ECDSA P-384 public key"},
		"headers in block":        {strings.Replace(good, "-----\n", "-----\nComment: hi\n\n", 1), "must not have headers"},
		"too large":               {good + strings.Repeat(" ", maxKeyPEMSize), "more than"},
	} {
		t.Run(name, func(t *testing.T) {
			pub, err := ParsePublicKeyPEM(tc.in)
			if pub != nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalidPublicKey) {
				t.Fatalf("got %v, want ErrInvalidPublicKey", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "publicKeyMaterial ") || !strings.Contains(msg, tc.says) {
				t.Errorf("message %q does not say %q", msg, tc.says)
			}
		})
	}
}

func mustDER(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// The IVS docs make the key pair with OpenSSL:
//
//	openssl ecparam -name secp384r1 -genkey -noout -out priv.pem
//	openssl ec -in priv.pem -pubout -out public.pem
//
// The public.pem this gives must import, and its fingerprint must be what
// `openssl md5 -c` says of its DER.
func TestIVS_ImportPublicKeyFromOpenSSL(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	runOpenSSL(t, dir, "ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "priv.pem")
	runOpenSSL(t, dir, "ec", "-in", "priv.pem", "-pubout", "-out", "public.pem")
	material := runOpenSSL(t, dir, "pkey", "-pubin", "-in", "public.pem")
	pub, err := ParsePublicKeyPEM(string(material))
	if err != nil {
		t.Fatalf("%v\n%s", err, material)
	}
	runOpenSSL(t, dir, "pkey", "-pubin", "-in", "public.pem", "-outform", "DER", "-out", "public.der")
	out := string(runOpenSSL(t, dir, "md5", "-c", filepath.Join(dir, "public.der")))
	want := strings.TrimSpace(out[strings.LastIndex(out, "=")+1:])
	if got := Fingerprint(pub); got != want {
		t.Errorf("Fingerprint = %s, openssl md5 -c = %s", got, want)
	}

	// And the private key the customer keeps is refused at import.
	priv := runOpenSSL(t, dir, "ec", "-in", "priv.pem")
	if _, err := ParsePublicKeyPEM(string(priv)); !errors.Is(err, ErrInvalidPublicKey) {
		t.Errorf("private key imported: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	k1 := mustECKey(t, elliptic.P384())
	k2 := mustECKey(t, elliptic.P384())
	material := publicPEM(t, &k1.PublicKey)

	fp := Fingerprint(&k1.PublicKey)
	if !regexp.MustCompile(`^([0-9a-f]{2}:){15}[0-9a-f]{2}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q is not 16 colon-separated hex pairs", fp)
	}
	// Known answer, computed independently: MD5 of the DER in the PEM.
	block, _ := pem.Decode([]byte(material))
	sum := md5.Sum(block.Bytes)
	if want := hex.EncodeToString(sum[:]); strings.ReplaceAll(fp, ":", "") != want {
		t.Errorf("Fingerprint = %s, MD5 of the DER = %s", fp, want)
	}
	// Stable: the same key, parsed again or reformatted, has the same one.
	for _, in := range []string{material, strings.ReplaceAll(material, "\n", "\r\n"), oneLineBody(material)} {
		pub, err := ParsePublicKeyPEM(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := Fingerprint(pub); got != fp {
			t.Errorf("fingerprint changed: %s then %s", fp, got)
		}
	}
	if Fingerprint(&k2.PublicKey) == fp {
		t.Error("two keys have the same fingerprint")
	}
	if Fingerprint(nil) != "" {
		t.Error("nil key has a fingerprint")
	}
	if Fingerprint(&ecdsa.PublicKey{}) != "" {
		t.Error("a key without curve has a fingerprint")
	}
}
