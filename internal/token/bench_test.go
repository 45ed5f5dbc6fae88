package token

import "testing"

// BenchmarkSign is the cost of minting one token (CreateParticipantToken,
// CreateStage with participantTokenConfigurations).
func BenchmarkSign(b *testing.B) {
	k := mustSigningKey(b)
	c := testClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the signature check done once per join; with
// BenchmarkParse it bounds how many joins per second a core can admit.
func BenchmarkVerify(b *testing.B) {
	k := mustSigningKey(b)
	p, err := Parse(mustSign(b, k, testClaims()))
	if err != nil {
		b.Fatal(err)
	}
	pub := k.Public()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Verify(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse is the decoding that precedes Verify.
func BenchmarkParse(b *testing.B) {
	tok := mustSign(b, mustSigningKey(b), testClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}
