package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// compact removes the insignificant whitespace of a JSON text.
func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Payloads of real IVS tokens (IVS-BEHAVIOUR.md §1.1). Read and written back,
// each must come out byte for byte as IVS wrote it: member order, only-true
// capabilities, attributes present or left out.
func TestIVS_ClaimsJSONShape(t *testing.T) {
	payloads := map[string]string{
		"us-west-2 subscribe-only with attributes": `{
  "exp": 1764862162,
  "iat": 1763652562,
  "jti": "1tFZIqK6yKYz",
  "resource": "arn:aws:ivs:us-west-2:639934345351:stage/SGZkQ04U7B6h",
  "topic": "SGZkQ04U7B6h",
  "events_url": "wss://global.events.live-video.net",
  "whip_url": "https://9fa1a3725a35.global-bm.whip.live-video.net",
  "user_id": "ivs-gamelift-test-user",
  "attributes": { "stream_source": "gameplay", "username": "ivs-gamelift-test-user" },
  "capabilities": { "allow_subscribe": true },
  "version": "0.0"
}`,
		"ap-northeast-2 publish+subscribe without attributes": `{
  "exp": 1705557409, "iat": 1704347809,
  "jti": "KhSFibnvBQSB",
  "resource": "arn:aws:ivs:ap-northeast-2:935096312943:stage/8h86yWuvnf17",
  "topic": "8h86yWuvnf17",
  "events_url": "wss://global.eevee.events.live-video.net",
  "whip_url": "https://65aca2fff0a2.global-bm.whip.live-video.net",
  "user_id": "r-server",
  "capabilities": { "allow_publish": true, "allow_subscribe": true },
  "version": "0.0"
}`,
		"eu-central-1 non-ASCII attribute": `{
  "exp": 1691766274, "iat": 1691757154, "jti": "ahDrI7i9rAQ4",
  "resource": "arn:aws:ivs:eu-central-1:461074755726:stage/Eu4IfqqS4aBP",
  "topic": "Eu4IfqqS4aBP",
  "events_url": "wss://eu-central-1.events.live-video.net",
  "whip_url": "https://435def77beb6.global.whip.live-video.net",
  "user_id": "1",
  "attributes": { "displayName": "Ali Kaan Kiriş" },
  "capabilities": { "allow_publish": true, "allow_subscribe": true },
  "version": "0.3"
}`,
	}
	for name, payload := range payloads {
		t.Run(name, func(t *testing.T) {
			var c Claims
			if err := json.Unmarshal([]byte(payload), &c); err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if want := compact(t, payload); string(out) != want {
				t.Errorf("got  %s\nwant %s", out, want)
			}
			if err := c.Validate(time.Unix(c.IssuedAt+60, 0), 0); err != nil {
				t.Errorf("a real IVS payload fails Validate: %v", err)
			}
		})
	}
}

// IVS's tokens list only the capabilities that are granted.
func TestIVS_CapabilitiesOnlyTrueFlags(t *testing.T) {
	for _, tc := range []struct {
		c    Capabilities
		want string
	}{
		{Capabilities{Publish: true, Subscribe: true}, `{"allow_publish":true,"allow_subscribe":true}`},
		{Capabilities{Publish: true}, `{"allow_publish":true}`},
		{Capabilities{Subscribe: true}, `{"allow_subscribe":true}`},
		{Capabilities{}, `{}`},
	} {
		got, err := json.Marshal(tc.c)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.c, got, tc.want)
		}
		var back Capabilities
		if err := json.Unmarshal(got, &back); err != nil || back != tc.c {
			t.Errorf("%s reads back as %+v, %v", got, back, err)
		}
	}
}

// Self-signed tokens may spell out a denied capability; absent means denied.
func TestIVS_SelfSignedCapabilitiesAcceptExplicitFalse(t *testing.T) {
	for in, want := range map[string]Capabilities{
		`{"allow_publish": false, "allow_subscribe": true}`:    {Subscribe: true},
		`{"allow_publish": true, "allow_subscribe": false}`:    {Publish: true},
		`{"allow_publish": false, "allow_subscribe": false}`:   {},
		`{"allow_publish": null}`:                              {},
		`{}`:                                                   {},
		`{"allow_subscribe": true, "allow_screenshare": true}`: {Subscribe: true},
		`{"Allow_Publish": true}`:                              {}, // names are exact
	} {
		var got Capabilities
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got != want {
			t.Errorf("%s: got %+v, want %+v", in, got, want)
		}
	}
	for _, in := range []string{`{"allow_publish": 1}`, `{"allow_publish": "true"}`, `[]`, `true`, `{"allow_publish": true, "allow_publish": false}`} {
		var got Capabilities
		if err := json.Unmarshal([]byte(in), &got); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", in, err)
		}
	}
}

// A token with no user id and no attributes carries neither member, as in
// IVS's tokens (attributes are left out when empty).
func TestIVS_OmitsEmptyUserIDAndAttributes(t *testing.T) {
	c := testClaims()
	c.UserID = ""
	c.Attributes = map[string]string{}
	c.Capabilities = Capabilities{Publish: true}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"exp":1764862162,"iat":1763652562,"jti":"1tFZIqK6yKYz",` +
		`"resource":"arn:aws:ivs:us-west-2:639934345351:stage/SGZkQ04U7B6h","topic":"SGZkQ04U7B6h",` +
		`"events_url":"wss://global.events.live-video.net","whip_url":"https://9fa1a3725a35.global-bm.whip.live-video.net",` +
		`"capabilities":{"allow_publish":true},"version":"0.0"}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

// IVS sets exp = iat + duration×60: 20160 minutes → 1209600 s, 720 → 43200.
func TestIVS_ExpIsIatPlusDurationMinutes(t *testing.T) {
	issued := time.Unix(1704347809, 987654321) // fractions of a second are dropped
	for minutes, seconds := range map[int]int64{1: 60, DefaultDurationMinutes: 43200, MaxDurationMinutes: 1209600} {
		var c Claims
		if err := c.SetLifetime(issued, minutes); err != nil {
			t.Fatal(err)
		}
		if c.IssuedAt != 1704347809 || c.ExpiresAt-c.IssuedAt != seconds {
			t.Errorf("%d minutes: iat %d exp %d, want exp-iat = %d", minutes, c.IssuedAt, c.ExpiresAt, seconds)
		}
	}
	// The ap-northeast-2 token of §1.1 was made with duration 20160.
	var c Claims
	if err := c.SetLifetime(time.Unix(1704347809, 0), 20160); err != nil || c.ExpiresAt != 1705557409 {
		t.Errorf("exp = %d, %v; the real token has 1705557409", c.ExpiresAt, err)
	}
	for _, m := range []int{0, -1, MaxDurationMinutes + 1} {
		if err := new(Claims).SetLifetime(issued, m); !errors.Is(err, ErrInvalidClaims) {
			t.Errorf("%d minutes: got %v, want ErrInvalidClaims", m, err)
		}
	}
}

func TestClaimsUnmarshalStrict(t *testing.T) {
	read := func(s string) (Claims, error) {
		var c Claims
		err := json.Unmarshal([]byte(s), &c)
		return c, err
	}

	// Names are matched exactly: encoding/json alone would fill jti from "JTI".
	c, err := read(`{"JTI":"x","Exp":5,"jti":"y"}`)
	if err != nil || c.ParticipantID != "y" || c.ExpiresAt != 0 {
		t.Errorf("case-variant names: %+v, %v", c, err)
	}
	// Unknown claims are ignored, null counts as absent.
	c, err = read(`{"iss":"me","aud":["a"],"sub":{},"user_id":null,"attributes":null,"capabilities":null,"exp":null}`)
	if err != nil || !reflect.DeepEqual(c, Claims{}) {
		t.Errorf("unknown and null claims: %+v, %v", c, err)
	}
	// NumericDate may have a fraction (RFC 7519 §2); it is rounded down.
	c, err = read(`{"exp":1735689600.9,"iat":1.7356860e9,"nbf":1735686000.0}`)
	if err != nil || c.ExpiresAt != 1735689600 || c.IssuedAt != 1735686000 || c.NotBefore != 1735686000 {
		t.Errorf("fractional dates: %+v, %v", c, err)
	}
	// Empty attributes read as none.
	c, err = read(`{"attributes":{}}`)
	if err != nil || c.Attributes != nil {
		t.Errorf("empty attributes: %#v, %v", c.Attributes, err)
	}
	// Escapes are decoded.
	c, err = read(`{"user_id":"a\u00e9\"b","attributes":{"k\n":"v\/"}}`)
	if err != nil || c.UserID != "aé\"b" || c.Attributes["k\n"] != "v/" {
		t.Errorf("escapes: %+v, %v", c, err)
	}

	for _, bad := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"exp":}`, `{"exp":1,}`, `{"exp":1} {}`, `{"exp":1}]`,
		`{"exp":1,"exp":2}`, `{"exp":"1"}`, `{"exp":NaN}`, `{"exp":-1e300}`, `{"exp":[1]}`,
		`{"jti":1}`, `{"jti":true}`, `{"version":0.0}`, `{"attributes":"a=b"}`, `{"attributes":{"a":null}}`,
		`{"capabilities":{"allow_publish":"yes"}}`, `{"capabilities":"PUBLISH"}`,
	} {
		if _, err := read(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		} else if bad != "" && !errors.Is(err, ErrMalformed) {
			// json.Unmarshal checks syntax before calling UnmarshalJSON, so
			// some errors are its own; Parse always reports ErrMalformed.
			var se *json.SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("%q: got %v, want ErrMalformed", bad, err)
			}
		}
	}
}

// Self-signed tokens carry whatever exp their maker chose; like the tokens
// CreateParticipantToken mints, they may live at most 14 days unless the
// operator says otherwise.
func TestValidateBoundsTheLifetime(t *testing.T) {
	now := time.Unix(1764000000, 0)
	lived := func(d time.Duration) Claims {
		c := testClaims()
		c.IssuedAt = now.Unix()
		c.ExpiresAt = now.Add(d).Unix()
		return c
	}
	for _, tc := range []struct {
		name string
		c    Claims
		max  time.Duration
		want error
	}{
		{"14 days, the longest minted token", lived(MaxDurationMinutes * time.Minute), 0, nil},
		{"14 days and a second", lived(MaxDurationMinutes*time.Minute + time.Second), 0, ErrInvalidClaims},
		{"10 years", lived(10 * 365 * 24 * time.Hour), 0, ErrInvalidClaims},
		{"until year 9999", func() Claims { c := lived(time.Hour); c.ExpiresAt = maxNumericDate; return c }(), 0, ErrInvalidClaims},
		{"one hour under a one-hour limit", lived(time.Hour), time.Hour, nil},
		{"two hours under a one-hour limit", lived(2 * time.Hour), time.Hour, ErrInvalidClaims},
		{"30 days under a 30-day limit", lived(30 * 24 * time.Hour), 30 * 24 * time.Hour, nil},
		{"issued long ago, expiring soon", func() Claims { c := lived(time.Hour); c.IssuedAt = now.Add(-30 * 24 * time.Hour).Unix(); return c }(), 0, ErrInvalidClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.ValidateWith(now, Limits{Leeway: time.Minute, MaxLifetime: tc.max})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tc.want)
			if !strings.Contains(err.Error(), "more than the") {
				t.Errorf("message does not say what is too long: %v", err)
			}
		})
	}
	// Validate applies the default.
	wantErr(t, lived(10*365*24*time.Hour).Validate(now, time.Minute), ErrInvalidClaims)
}

func TestValidate(t *testing.T) {
	base := testClaims()
	exp := time.Unix(base.ExpiresAt, 0)
	iat := time.Unix(base.IssuedAt, 0)
	with := func(f func(*Claims)) Claims { c := testClaims(); f(&c); return c }

	for _, tc := range []struct {
		name   string
		c      Claims
		now    time.Time
		leeway time.Duration
		want   error
	}{
		{"valid", base, testNow, 0, nil},
		{"valid at iat", base, iat, 0, nil},
		{"one second before exp", base, exp.Add(-time.Second), 0, nil},
		{"at exp", base, exp, 0, ErrExpired},
		{"after exp", base, exp.Add(time.Hour), 0, ErrExpired},
		{"after exp within leeway", base, exp.Add(30 * time.Second), time.Minute, nil},
		{"after exp beyond leeway", base, exp.Add(time.Minute), time.Minute, ErrExpired},
		{"negative leeway is zero", base, exp, -time.Hour, ErrExpired},
		{"iat in the future", base, iat.Add(-2 * time.Minute), time.Minute, ErrNotYetValid},
		{"iat in the future within leeway", base, iat.Add(-30 * time.Second), time.Minute, nil},
		{"nbf in the future", with(func(c *Claims) { c.NotBefore = c.IssuedAt + 7200 }), testNow, 0, ErrNotYetValid},
		{"nbf in the past", with(func(c *Claims) { c.NotBefore = c.IssuedAt }), testNow, 0, nil},
		{"no exp", with(func(c *Claims) { c.ExpiresAt = 0 }), testNow, 0, ErrInvalidClaims},
		{"no iat", with(func(c *Claims) { c.IssuedAt = 0 }), testNow, 0, ErrInvalidClaims},
		{"negative iat", with(func(c *Claims) { c.IssuedAt = -5 }), testNow, 0, ErrInvalidClaims},
		{"exp beyond year 9999", with(func(c *Claims) { c.ExpiresAt = 1 << 62 }), testNow, 0, ErrInvalidClaims},
		{"exp before iat", with(func(c *Claims) { c.ExpiresAt = c.IssuedAt - 1 }), testNow, 0, ErrInvalidClaims},
		{"exp equals iat", with(func(c *Claims) { c.ExpiresAt = c.IssuedAt }), testNow, 0, ErrInvalidClaims},
		{"jti with - and _", with(func(c *Claims) { c.ParticipantID = "a-B_9" }), testNow, 0, nil},
		{"jti of 64", with(func(c *Claims) { c.ParticipantID = strings.Repeat("a", 64) }), testNow, 0, nil},
		{"jti of 65", with(func(c *Claims) { c.ParticipantID = strings.Repeat("a", 65) }), testNow, 0, ErrInvalidClaims},
		{"jti empty", with(func(c *Claims) { c.ParticipantID = "" }), testNow, 0, ErrInvalidClaims},
		{"jti with space", with(func(c *Claims) { c.ParticipantID = "a b" }), testNow, 0, ErrInvalidClaims},
		{"jti with slash", with(func(c *Claims) { c.ParticipantID = "a/b" }), testNow, 0, ErrInvalidClaims},
		{"jti with newline", with(func(c *Claims) { c.ParticipantID = "ab\n" }), testNow, 0, ErrInvalidClaims},
		{"jti non-ASCII", with(func(c *Claims) { c.ParticipantID = "é" }), testNow, 0, ErrInvalidClaims},
		{"resource empty", with(func(c *Claims) { c.Resource = "" }), testNow, 0, ErrInvalidClaims},
		{"resource channel ARN", with(func(c *Claims) { c.Resource = "arn:aws:ivs:us-west-2:639934345351:channel/SGZkQ04U7B6h" }), testNow, 0, ErrInvalidClaims},
		{"resource public-key ARN", with(func(c *Claims) { c.Resource = "arn:aws:ivs:us-west-2:639934345351:public-key/SGZkQ04U7B6h" }), testNow, 0, ErrInvalidClaims},
		{"resource other partition", with(func(c *Claims) { c.Resource = "arn:aws-cn:ivs:us-west-2:639934345351:stage/SGZkQ04U7B6h" }), testNow, 0, ErrInvalidClaims},
		{"resource with suffix", with(func(c *Claims) { c.Resource += "/x" }), testNow, 0, ErrInvalidClaims},
		{"resource over 128", with(func(c *Claims) {
			c.Topic = strings.Repeat("a", 100)
			c.Resource = "arn:aws:ivs:us-west-2:639934345351:stage/" + c.Topic
		}), testNow, 0, ErrInvalidClaims},
		{"topic of another stage", with(func(c *Claims) { c.Topic = "AbCdEfGhIjKl" }), testNow, 0, ErrInvalidClaims},
		{"topic empty", with(func(c *Claims) { c.Topic = "" }), testNow, 0, ErrInvalidClaims},
		{"events_url ws", with(func(c *Claims) { c.EventsURL = "ws://localhost:7880/events" }), testNow, 0, nil},
		{"events_url https", with(func(c *Claims) { c.EventsURL = "https://global.events.live-video.net" }), testNow, 0, ErrInvalidClaims},
		{"events_url with fragment", with(func(c *Claims) { c.EventsURL += "#x" }), testNow, 0, ErrInvalidClaims},
		{"events_url relative", with(func(c *Claims) { c.EventsURL = "/events" }), testNow, 0, ErrInvalidClaims},
		{"events_url missing", with(func(c *Claims) { c.EventsURL = "" }), testNow, 0, ErrInvalidClaims},
		{"whip_url http", with(func(c *Claims) { c.WhipURL = "http://127.0.0.1:7880" }), testNow, 0, nil},
		{"whip_url wss", with(func(c *Claims) { c.WhipURL = "wss://x.example" }), testNow, 0, ErrInvalidClaims},
		{"whip_url with space", with(func(c *Claims) { c.WhipURL = "https://x.example/ a" }), testNow, 0, ErrInvalidClaims},
		{"whip_url with user", with(func(c *Claims) { c.WhipURL = "https://u:p@x.example" }), testNow, 0, ErrInvalidClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate(tc.now, tc.leeway)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v", err)
				}
				return
			}
			wantErr(t, err, tc.want)
		})
	}
}
