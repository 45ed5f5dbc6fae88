package rtclient

import (
	"encoding/base64"
	"errors"
	"reflect"
	"testing"
	"time"
)

// The payload of a real IVS token (IVS-BEHAVIOUR.md §1.1, us-west-2 2025-11,
// subscribe-only, with attributes), under IVS's "KMS" header.
func TestParseTokenReadsIVSClaims(t *testing.T) {
	payload := `{"exp":1764862162,"iat":1763652562,"jti":"1tFZIqK6yKYz",` +
		`"resource":"arn:aws:ivs:us-west-2:639934345351:stage/SGZkQ04U7B6h","topic":"SGZkQ04U7B6h",` +
		`"events_url":"wss://global.events.live-video.net","whip_url":"https://9fa1a3725a35.global-bm.whip.live-video.net",` +
		`"user_id":"ivs-gamelift-test-user","attributes":{"stream_source":"gameplay","username":"ivs-gamelift-test-user"},` +
		`"capabilities":{"allow_subscribe":true},"version":"0.0"}`
	enc := base64.RawURLEncoding.EncodeToString
	raw := enc([]byte(`{"alg":"KMS","typ":"JWT"}`)) + "." + enc([]byte(payload)) + "." + enc([]byte{0x30, 0x66, 1, 2})
	info, err := ParseToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := TokenInfo{
		ParticipantID: "1tFZIqK6yKYz",
		StageARN:      "arn:aws:ivs:us-west-2:639934345351:stage/SGZkQ04U7B6h",
		Topic:         "SGZkQ04U7B6h",
		EventsURL:     "wss://global.events.live-video.net",
		WhipURL:       "https://9fa1a3725a35.global-bm.whip.live-video.net",
		UserID:        "ivs-gamelift-test-user",
		Subscribe:     true,
		Version:       "0.0",
	}
	got := info
	got.Attributes, got.IssuedAt, got.ExpiresAt = nil, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if info.Publish {
		t.Error("Publish is true for a subscribe-only token")
	}
	if info.Attributes["stream_source"] != "gameplay" {
		t.Errorf("attributes = %v", info.Attributes)
	}
	if !info.ExpiresAt.Equal(time.Unix(1764862162, 0)) || !info.IssuedAt.Equal(time.Unix(1763652562, 0)) {
		t.Errorf("times = %v, %v", info.IssuedAt, info.ExpiresAt)
	}
}

// Self-signed tokens may spell out a denied capability (IVS-BEHAVIOUR.md §1.2).
func TestParseTokenSelfSignedFalseCapability(t *testing.T) {
	raw := makeToken(t, map[string]any{"jti": "p1", "capabilities": map[string]bool{"allow_publish": false, "allow_subscribe": true}})
	info, err := ParseToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	if info.Publish || !info.Subscribe {
		t.Errorf("capabilities = publish %v subscribe %v", info.Publish, info.Subscribe)
	}
}

func TestParseTokenRejectsMalformed(t *testing.T) {
	good := makeToken(t, map[string]any{"jti": "p1"})
	for name, raw := range map[string]string{
		"empty":       "",
		"two parts":   "a.b",
		"bad base64":  "eyJ.!!!.sig",
		"not json":    "e30." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".sig",
		"json array":  "e30." + base64.RawURLEncoding.EncodeToString([]byte("[1]")) + ".sig",
		"whitespace":  good + " ",
		"bearer form": "Bearer " + good,
	} {
		if _, err := ParseToken(raw); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("%s: err = %v, want ErrMalformedToken", name, err)
		}
	}
}
