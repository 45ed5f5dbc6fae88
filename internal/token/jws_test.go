package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSignParseVerifyRoundTrip(t *testing.T) {
	for alg, k := range bothKeys(t) {
		t.Run(alg, func(t *testing.T) { testRoundTrip(t, k, alg) })
	}
}

func testRoundTrip(t *testing.T, k *SigningKey, alg string) {
	c := testClaims()
	c.NotBefore = c.IssuedAt
	tok := mustSign(t, k, c)

	if n := strings.Count(tok, "."); n != 2 {
		t.Fatalf("token has %d dots", n)
	}
	p, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Header{Alg: alg, Typ: "JWT", Kid: k.ID}); p.Header != want || k.Alg() != alg {
		t.Errorf("header = %+v, want %+v", p.Header, want)
	}
	if !reflect.DeepEqual(p.Claims, c) {
		t.Errorf("claims = %+v\nwant     %+v", p.Claims, c)
	}
	if err := p.Verify(k.Public()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := p.Claims.Validate(testNow, 0); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := map[string]int{"ES256": 64, "ES384": 96}[alg]
	if _, _, s := parts(t, tok); len(decode(t, s)) != want {
		t.Errorf("signature is %d bytes, want raw r||s of %d", len(decode(t, s)), want)
	}
}

// Rostrum signs as standard ES256 (ES384 with a key made before issue 13)
// where IVS writes "alg":"KMS"; the key id is the only addition to IVS's
// header.
func TestIVS_ServerTokenHeader(t *testing.T) {
	for alg, k := range bothKeys(t) {
		h, _, _ := parts(t, mustSign(t, k, testClaims()))
		if got, want := decode(t, h), `{"alg":"`+alg+`","typ":"JWT","kid":"`+k.ID+`"}`; got != want {
			t.Errorf("header = %s, want %s", got, want)
		}
	}
}

func TestSignIsRandomizedButBothVerify(t *testing.T) {
	k := mustSigningKey(t)
	a, b := mustSign(t, k, testClaims()), mustSign(t, k, testClaims())
	if a == b {
		t.Error("two signatures of the same claims are identical; ECDSA nonces must differ")
	}
	for _, tok := range []string{a, b} {
		p, err := Parse(tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(k.Public()); err != nil {
			t.Error(err)
		}
	}
}

func TestTamperedTokensFail(t *testing.T) {
	for alg, k := range bothKeys(t) {
		t.Run(alg, func(t *testing.T) { testTampered(t, k) })
	}
}

func testTampered(t *testing.T, k *SigningKey) {
	tok := mustSign(t, k, testClaims())
	h, pl, s := parts(t, tok)

	// Another valid token of the same key, for splicing.
	c2 := testClaims()
	c2.ParticipantID = "someoneElse1"
	h2, pl2, s2 := parts(t, mustSign(t, k, c2))

	elevated := testClaims()
	elevated.Capabilities = Capabilities{Publish: true, Subscribe: true}
	elevated.ExpiresAt += 86400
	elevatedJSON, err := elevated.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	sig := []byte(decode(t, s))
	sig[10] ^= 0x01
	flippedSig := base64.RawURLEncoding.EncodeToString(sig)
	sig = []byte(decode(t, s))
	sig[len(sig)-1] ^= 0x80
	flippedLast := base64.RawURLEncoding.EncodeToString(sig)

	cases := map[string]string{
		"payload with longer exp":                h + "." + enc(string(elevatedJSON)) + "." + s,
		"payload one char changed":               h + "." + strings.Replace(pl, enc(`{"exp":1764862162`), enc(`{"exp":1764862163`), 1) + "." + s,
		"header with another kid":                enc(`{"alg":"`+k.Alg()+`","typ":"JWT","kid":"xxxxxxxxxxxxxxxx"}`) + "." + pl + "." + s,
		"header spelled otherwise":               enc(`{"typ":"JWT","alg":"`+k.Alg()+`","kid":"`+k.ID+`"}`) + "." + pl + "." + s,
		"signature bit flipped":                  h + "." + pl + "." + flippedSig,
		"signature last bit":                     h + "." + pl + "." + flippedLast,
		"signature of other token":               h + "." + pl + "." + s2,
		"payload of other token":                 h + "." + pl2 + "." + s,
		"header of other token, payload of this": h2 + "." + pl + "." + s2,
	}
	if !strings.HasPrefix(pl, enc(`{"exp":1764862162`)[:20]) {
		t.Fatal("test assumes the payload starts with exp")
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			if bad == tok {
				t.Fatal("tampering changed nothing")
			}
			p, err := Parse(bad)
			if err != nil {
				t.Fatalf("Parse: %v (the tampered token should still be well-formed)", err)
			}
			wantErr(t, p.Verify(k.Public()), ErrBadSignature)
		})
	}
}

func TestTokenOfAnotherKeyFails(t *testing.T) {
	k, other := mustSigningKey(t), mustSigningKey(t)
	p, err := Parse(mustSign(t, other, testClaims()))
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, p.Verify(k.Public()), ErrBadSignature)

	// Same key id, different key: the kid is a hint, never a credential.
	other.ID = k.ID
	p, err = Parse(mustSign(t, other, testClaims()))
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, p.Verify(k.Public()), ErrBadSignature)
}

func TestRejectsOtherAlgorithms(t *testing.T) {
	k := mustSigningKey(t)
	payload, err := testClaims().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	pl := enc(string(payload))
	goodSig := func() string { _, _, s := parts(t, mustSign(t, k, testClaims())); return s }()

	// HS256 keyed with the server's public key: the classic confusion attack.
	hsInput := enc(`{"alg":"HS256","typ":"JWT"}`) + "." + pl
	mac := hmac.New(sha256.New, []byte(publicPEM(t, k.Public())))
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	// A real IVS token: alg KMS and a 103-byte DER signature.
	kmsSig := make([]byte, 103)
	kmsSig[0] = 0x30

	cases := map[string]struct {
		tok  string
		want error
	}{
		"none":               {enc(`{"alg":"none","typ":"JWT"}`) + "." + pl + ".", ErrUnsupportedAlg},
		"none with sig":      {enc(`{"alg":"none"}`) + "." + pl + "." + goodSig, ErrUnsupportedAlg},
		"None":               {enc(`{"alg":"None"}`) + "." + pl + ".", ErrUnsupportedAlg},
		"HS256":              {hs256, ErrUnsupportedAlg},
		"KMS (IVS's own)":    {enc(`{"alg":"KMS","typ":"JWT"}`) + "." + pl + "." + base64.RawURLEncoding.EncodeToString(kmsSig), ErrUnsupportedAlg},
		"ES512":              {enc(`{"alg":"ES512","typ":"JWT"}`) + "." + pl + "." + goodSig, ErrUnsupportedAlg},
		"EdDSA":              {enc(`{"alg":"EdDSA","typ":"JWT"}`) + "." + pl + "." + goodSig, ErrUnsupportedAlg},
		"RS384":              {enc(`{"alg":"RS384","typ":"JWT"}`) + "." + pl + "." + goodSig, ErrUnsupportedAlg},
		"es384 lower case":   {enc(`{"alg":"es384","typ":"JWT"}`) + "." + pl + "." + goodSig, ErrUnsupportedAlg},
		"empty alg":          {enc(`{"alg":"","typ":"JWT"}`) + "." + pl + "." + goodSig, ErrUnsupportedAlg},
		"no alg":             {enc(`{"typ":"JWT"}`) + "." + pl + "." + goodSig, ErrMalformed},
		"ALG upper-case key": {enc(`{"ALG":"ES384","typ":"JWT"}`) + "." + pl + "." + goodSig, ErrMalformed},
		"alg not a string":   {enc(`{"alg":["ES384"]}`) + "." + pl + "." + goodSig, ErrMalformed},
		"alg null":           {enc(`{"alg":null}`) + "." + pl + "." + goodSig, ErrMalformed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := Parse(tc.tok)
			if p != nil {
				t.Fatalf("Parse returned a token: %+v", p.Header)
			}
			wantErr(t, err, tc.want)
		})
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	k := mustES384Key(t)
	tok := mustSign(t, k, testClaims())
	h, pl, s := parts(t, tok)
	hdr := enc(`{"alg":"ES384","typ":"JWT"}`)
	claims := func(json string) string { return hdr + "." + enc(json) + "." + s }

	// Base64url whose unused trailing bits are set decodes to the same bytes
	// in lax decoders; only one spelling is accepted. 16 bytes of header
	// leave 4 unused bits in the last character.
	lax := enc(`{"alg":"ES384"} `)
	lax = lax[:len(lax)-1] + string(base64URLAlphabet[strings.IndexByte(base64URLAlphabet, lax[len(lax)-1])|1])
	if b, err := base64.RawURLEncoding.DecodeString(lax); err != nil || string(b) != `{"alg":"ES384"} ` {
		t.Fatalf("test setup: lax spelling decodes to %q, %v", b, err)
	}
	if _, err := Parse(enc(`{"alg":"ES384"} `) + "." + pl + "." + s); err != nil {
		t.Fatalf("test setup: canonical spelling does not parse: %v", err)
	}

	cases := map[string]struct {
		tok  string
		want error
	}{
		"empty":                  {"", ErrMalformed},
		"too large":              {h + "." + strings.Repeat("A", MaxTokenSize) + "." + s, ErrMalformed},
		"one part":               {h, ErrMalformed},
		"two parts":              {h + "." + pl, ErrMalformed},
		"four parts":             {tok + "." + s, ErrMalformed},
		"only dots":              {"..", ErrMalformed},
		"padding":                {h + "=." + pl + "." + s, ErrMalformed},
		"space":                  {" " + tok, ErrMalformed},
		"trailing newline":       {tok + "\n", ErrMalformed},
		"newline inside payload": {h + "." + pl[:10] + "\n" + pl[10:] + "." + s, ErrMalformed},
		"std base64 alphabet":    {h + "." + pl + "." + strings.NewReplacer("-", "+", "_", "/").Replace(s) + "+/", ErrMalformed},
		"non-canonical base64":   {lax + "." + pl + "." + s, ErrMalformed},
		"bad base64 length":      {h + "." + pl + "A." + s, ErrMalformed},
		"header not JSON":        {enc(`alg=ES384`) + "." + pl + "." + s, ErrMalformed},
		"header JSON array":      {enc(`["ES384"]`) + "." + pl + "." + s, ErrMalformed},
		"header duplicate alg":   {enc(`{"alg":"none","alg":"ES384"}`) + "." + pl + "." + s, ErrMalformed},
		"header trailing data":   {enc(`{"alg":"ES384"}{}`) + "." + pl + "." + s, ErrMalformed},
		"header crit":            {enc(`{"alg":"ES384","crit":["exp"],"exp":1}`) + "." + pl + "." + s, ErrMalformed},
		"header typ not JWT":     {enc(`{"alg":"ES384","typ":"at+jwt"}`) + "." + pl + "." + s, ErrMalformed},
		"header invalid UTF-8":   {enc("{\"alg\":\"ES384\",\"kid\":\"\xff\"}") + "." + pl + "." + s, ErrMalformed},
		"payload empty":          {hdr + ".." + s, ErrMalformed},
		"payload not JSON":       {claims(`exp=1`), ErrMalformed},
		"payload JSON string":    {claims(`"{}"`), ErrMalformed},
		"payload trailing data":  {claims(`{"jti":"a"} x`), ErrMalformed},
		"payload two objects":    {claims(`{"jti":"a"}{"jti":"b"}`), ErrMalformed},
		"payload duplicate jti":  {claims(`{"jti":"a","jti":"b"}`), ErrMalformed},
		"payload invalid UTF-8":  {claims("{\"user_id\":\"\xc3\x28\"}"), ErrMalformed},
		"exp as string":          {claims(`{"exp":"1764862162"}`), ErrMalformed},
		"exp as bool":            {claims(`{"exp":true}`), ErrMalformed},
		"exp overflows":          {claims(`{"exp":1e400}`), ErrMalformed},
		"exp huge":               {claims(`{"exp":99999999999999999999999}`), ErrMalformed},
		"jti as number":          {claims(`{"jti":12}`), ErrMalformed},
		"attributes as array":    {claims(`{"attributes":["a"]}`), ErrMalformed},
		"attribute not string":   {claims(`{"attributes":{"a":1}}`), ErrMalformed},
		"attribute duplicate":    {claims(`{"attributes":{"a":"1","a":"2"}}`), ErrMalformed},
		"capability as string":   {claims(`{"capabilities":{"allow_publish":"true"}}`), ErrMalformed},
		"capabilities as array":  {claims(`{"capabilities":["PUBLISH"]}`), ErrMalformed},
		"deeply nested":          {claims(`{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`), nil},
		"no signature":           {h + "." + pl + ".", ErrBadSignature},
		"short signature":        {h + "." + pl + "." + s[:len(s)-4], ErrBadSignature},
		"long signature":         {h + "." + pl + "." + s + "AAAA", ErrBadSignature},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := Parse(tc.tok)
			if tc.want == nil { // well-formed but meaningless: must parse and fail to verify
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				wantErr(t, p.Verify(k.Public()), ErrBadSignature)
				return
			}
			if p != nil {
				t.Fatalf("Parse accepted it: %+v", p)
			}
			wantErr(t, err, tc.want)
		})
	}
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// An error message must not echo a whole hostile token.
func TestErrorMessagesAreBounded(t *testing.T) {
	long := strings.Repeat("x", 4000)
	_, err := Parse(enc(`{"alg":"`+long+`"}`) + ".e30.")
	wantErr(t, err, ErrUnsupportedAlg)
	if len(err.Error()) > 200 {
		t.Errorf("error message is %d bytes", len(err.Error()))
	}
}

// IVS documents self-signed tokens (getting-started-distribute-tokens): the
// customer makes an ECDSA P-384 key pair, imports the public PEM with
// ImportPublicKey and signs ES384 JWTs whose kid is the public-key ARN. Such a
// token, made here without this package's signing code, must verify.
func TestIVS_SelfSignedTokenVerifiesWithImportedKey(t *testing.T) {
	priv := mustECKey(t, elliptic.P384())
	imported, err := ParsePublicKeyPEM(publicPEM(t, &priv.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	const kid = "arn:aws:ivs:us-east-1:123456789012:public-key/AbCdEfGhIjKl"
	header := `{"alg":"ES384","typ":"JWT","kid":"` + kid + `"}`
	// The schema of the IVS docs, in the order a customer's code writes it.
	payload := `{
  "exp": 1735689600,
  "iat": 1735686000,
  "jti": "9f3a1c0b2d4e6f70",
  "resource": "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl",
  "topic": "AbCdEfGhIjKl",
  "events_url": "wss://global.events.live-video.net",
  "whip_url": "https://1a2b3c4d5e6f.global-bm.whip.live-video.net",
  "capabilities": {"allow_publish": false, "allow_subscribe": true},
  "user_id": "optional",
  "attributes": {"optional": "map"},
  "version": "1.0"
}`
	tok := customerSign(t, priv, header, payload)

	p, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Header.Kid != kid {
		t.Errorf("kid = %q", p.Header.Kid)
	}
	if err := p.Verify(imported); err != nil {
		t.Fatalf("Verify with the imported key: %v", err)
	}
	want := Claims{
		ExpiresAt: 1735689600, IssuedAt: 1735686000,
		ParticipantID: "9f3a1c0b2d4e6f70",
		Resource:      "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl",
		Topic:         "AbCdEfGhIjKl",
		EventsURL:     "wss://global.events.live-video.net",
		WhipURL:       "https://1a2b3c4d5e6f.global-bm.whip.live-video.net",
		UserID:        "optional",
		Attributes:    map[string]string{"optional": "map"},
		Capabilities:  Capabilities{Publish: false, Subscribe: true},
		Version:       "1.0",
	}
	if !reflect.DeepEqual(p.Claims, want) {
		t.Errorf("claims = %+v\nwant     %+v", p.Claims, want)
	}
	if err := p.Claims.Validate(time.Unix(1735687000, 0), 0); err != nil {
		t.Errorf("Validate: %v", err)
	}

	// The same token does not verify under another imported key.
	other, err := ParsePublicKeyPEM(publicPEM(t, &mustECKey(t, elliptic.P384()).PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, p.Verify(other), ErrBadSignature)

	// Nor when its signature is DER-encoded, as KMS and crypto/ecdsa's ASN.1
	// API produce it, instead of JOSE's r||s.
	h, pl, s := parts(t, tok)
	der := rawToDER(t, []byte(decode(t, s)))
	_, err = Parse(h + "." + pl + "." + base64.RawURLEncoding.EncodeToString(der))
	wantErr(t, err, ErrBadSignature)
}

func TestVerifyRejectsUnusableKeys(t *testing.T) {
	k := mustSigningKey(t)
	p, err := Parse(mustSign(t, k, testClaims()))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]*ecdsa.PublicKey{
		"nil":                 nil,
		"P-224":               &mustECKey(t, elliptic.P224()).PublicKey,
		"P-521":               &mustECKey(t, elliptic.P521()).PublicKey,
		"no curve":            {},
		"P-256 without point": {Curve: elliptic.P256()},
	}
	for name, pub := range keys {
		t.Run(name, func(t *testing.T) {
			wantErr(t, p.Verify(pub), ErrInvalidPublicKey)
		})
	}
	var nilParsed *Parsed
	wantErr(t, nilParsed.Verify(k.Public()), ErrMalformed)
	wantErr(t, new(Parsed).Verify(k.Public()), ErrBadSignature)
}

func TestSignRefuses(t *testing.T) {
	k := mustSigningKey(t)
	bad := testClaims()
	bad.ParticipantID = "has space"
	_, err := k.Sign(bad)
	wantErr(t, err, ErrInvalidClaims)

	bad = testClaims()
	bad.Topic = "AnotherStage"
	_, err = k.Sign(bad)
	wantErr(t, err, ErrInvalidClaims)

	for name, key := range map[string]*SigningKey{
		"nil key":        nil,
		"no private key": {ID: "abc"},
		"P-521":          {ID: "abc", Private: mustECKey(t, elliptic.P521())},
		"empty id":       {Private: k.Private},
		"ARN id":         {ID: "arn:aws:ivs:us-east-1:123456789012:public-key/AbCdEfGhIjKl", Private: k.Private},
		"id with space":  {ID: "a b", Private: k.Private},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := key.Sign(testClaims())
			wantErr(t, err, ErrInvalidSigningKey)
		})
	}
}

// Cross-checks the ES384 encoding against OpenSSL in both directions:
// OpenSSL's signature verifies here, and this package's verifies in OpenSSL.
func TestES384InteropWithOpenSSL(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	runOpenSSL(t, dir, "ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "priv.pem")
	pubPEM := runOpenSSL(t, dir, "ec", "-in", "priv.pem", "-pubout")
	pub, err := ParsePublicKeyPEM(string(pubPEM))
	if err != nil {
		t.Fatal(err)
	}

	// OpenSSL signs, this package verifies.
	input := enc(`{"alg":"ES384","typ":"JWT","kid":"arn:aws:ivs:us-east-1:123456789012:public-key/AbCdEfGhIjKl"}`) +
		"." + enc(`{"exp":1735689600,"iat":1735686000,"jti":"p1"}`)
	write(t, filepath.Join(dir, "input"), input)
	der := runOpenSSL(t, dir, "dgst", "-sha384", "-sign", "priv.pem", "input")
	p, err := Parse(input + "." + base64.RawURLEncoding.EncodeToString(derToRaw(t, der)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(pub); err != nil {
		t.Fatalf("OpenSSL's signature does not verify: %v", err)
	}

	// This package signs, OpenSSL verifies: ES384 with a key made before
	// issue 13, ES256 with a new one.
	for digest, k := range map[string]*SigningKey{"-sha384": mustES384Key(t), "-sha256": mustSigningKey(t)} {
		write(t, filepath.Join(dir, "server.pub"), publicPEM(t, k.Public()))
		tok := mustSign(t, k, testClaims())
		h, pl, s := parts(t, tok)
		write(t, filepath.Join(dir, "input2"), h+"."+pl)
		write(t, filepath.Join(dir, "sig2"), string(rawToDER(t, []byte(decode(t, s)))))
		out := runOpenSSL(t, dir, "dgst", digest, "-verify", "server.pub", "-signature", "sig2", "input2")
		if !strings.Contains(string(out), "Verified OK") {
			t.Fatalf("%s: OpenSSL says: %s", k.Alg(), out)
		}
	}
}

// A server's key made before issue 13 is P-384 and stored as PEM: read
// back, it keeps signing ES384, and the tokens it issued before keep
// verifying under it. An ES256 token is not accepted under a P-384 key (the
// keys of self-signed tokens are P-384: IVS requires ES384 of them), nor an
// ES384 token under a P-256 key.
func TestStoredES384KeyKeepsWorking(t *testing.T) {
	old := mustES384Key(t)
	issued := mustSign(t, old, testClaims())
	stored, err := old.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseSigningKeyPEM(stored)
	if err != nil {
		t.Fatal(err)
	}
	if k.Alg() != AlgES384 || k.ID != old.ID {
		t.Fatalf("stored P-384 key reads back as %s, id %q", k.Alg(), k.ID)
	}
	for _, tok := range []string{issued, mustSign(t, k, testClaims())} {
		p, err := Parse(tok)
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Alg != AlgES384 {
			t.Fatalf("alg %s", p.Header.Alg)
		}
		if err := p.Verify(k.Public()); err != nil {
			t.Fatalf("token of the stored key: %v", err)
		}
	}

	// Mismatched algorithm and key.
	k256 := mustSigningKey(t)
	p, err := Parse(mustSign(t, k256, testClaims()))
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, p.Verify(k.Public()), ErrUnsupportedAlg)
	p, err = Parse(issued)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, p.Verify(k256.Public()), ErrUnsupportedAlg)
	// An ES256 header over an ES384 signature is cut short by its length.
	_, pl, s := parts(t, issued)
	_, err = Parse(enc(`{"alg":"ES256","typ":"JWT"}`) + "." + pl + "." + s)
	wantErr(t, err, ErrBadSignature)
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
