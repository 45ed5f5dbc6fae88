package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// VersionServer is the version claim of tokens Rostrum mints, as in the tokens
// IVS minted in 2024–25. The Web SDK reads the minor part as a set of flags
// (flag 2 turns on silent audio), so 0 means "no flags".
const VersionServer = "0.0"

// Token lifetimes of CreateParticipantToken and CreateStage, in minutes: the
// API's default and its maximum (14 days).
const (
	DefaultDurationMinutes = 720
	MaxDurationMinutes     = 20160
)

// DefaultMaxLifetime is the longest exp − iat Validate accepts unless told
// otherwise: 14 days, the longest token CreateParticipantToken mints. A
// self-signed token is made by whoever holds an imported key, with any exp
// it likes; without a bound, one leaked token would open its stage for
// years.
const DefaultMaxLifetime = MaxDurationMinutes * time.Minute

// Limits are the time rules of ValidateWith.
type Limits struct {
	// Leeway absorbs clock skew between the signer and Rostrum (the Web
	// SDK allows 60 s); a negative leeway counts as zero.
	Leeway time.Duration
	// MaxLifetime bounds exp − iat, the lifetime the token declares;
	// zero or less means DefaultMaxLifetime. Tokens Rostrum mints never
	// exceed DefaultMaxLifetime, so a longer limit only concerns
	// self-signed ones.
	MaxLifetime time.Duration
}

// maxNumericDate is 9999-12-31T23:59:59Z. exp, iat and nbf beyond it are
// rejected so that time arithmetic on them cannot overflow.
const maxNumericDate = 253402300799

// Capabilities says what the holder of a token may do in the stage.
//
// IVS's own tokens list only the flags that are granted
// ({"allow_publish":true,"allow_subscribe":true}, or just one of them), and
// MarshalJSON does the same. Self-signed tokens made by customers may spell out
// a denied flag ({"allow_publish":false}); UnmarshalJSON accepts that. A
// missing flag means "not allowed".
type Capabilities struct {
	Publish   bool
	Subscribe bool
}

// MarshalJSON writes only the flags that are true, in IVS's order.
func (c Capabilities) MarshalJSON() ([]byte, error) {
	switch {
	case c.Publish && c.Subscribe:
		return []byte(`{"allow_publish":true,"allow_subscribe":true}`), nil
	case c.Publish:
		return []byte(`{"allow_publish":true}`), nil
	case c.Subscribe:
		return []byte(`{"allow_subscribe":true}`), nil
	default:
		return []byte(`{}`), nil
	}
}

// UnmarshalJSON reads a capabilities object. Flags may be true, false or null
// (null counts as false); unknown members are ignored so that a capability IVS
// adds later does not make existing tokens unreadable, but a known flag with a
// non-boolean value is an error.
func (c *Capabilities) UnmarshalJSON(data []byte) error {
	var out Capabilities
	err := walkObject(data, func(key string, raw json.RawMessage) error {
		var dst *bool
		switch key {
		case "allow_publish":
			dst = &out.Publish
		case "allow_subscribe":
			dst = &out.Subscribe
		default:
			return nil
		}
		switch string(raw) {
		case "true":
			*dst = true
		case "false", "null":
			*dst = false
		default:
			return fmt.Errorf("%w: capabilities.%s must be a boolean", ErrMalformed, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*c = out
	return nil
}

// Claims is the payload of a participant token, with IVS's claim names.
//
// The JSON form is exactly IVS's: members in IVS's order, user_id and
// attributes left out when empty, capabilities with only the true flags. nbf is
// not an IVS claim; it is read (and honoured by Validate) because RFC 7519
// requires it to be, should a customer's JWT library add one to a self-signed
// token.
type Claims struct {
	ExpiresAt int64 // exp, unix seconds. IVS sets exp = iat + duration×60.
	IssuedAt  int64 // iat, unix seconds.
	NotBefore int64 // nbf, unix seconds; 0 when absent. Never set by IVS.

	ParticipantID string // jti: the participantId the API returns; [a-zA-Z0-9-_]{1,64}.
	Resource      string // resource: the stage ARN.
	Topic         string // topic: the stage id, the last segment of Resource.
	EventsURL     string // events_url: the websocket the client joins (ws:// or wss://).
	WhipURL       string // whip_url: base of the WHIP publish / subscribe endpoints.

	UserID     string            // user_id; omitted when empty.
	Attributes map[string]string // attributes; omitted when empty.

	Capabilities Capabilities // capabilities.
	Version      string       // version: "0.0" for server tokens (VersionServer), e.g. "1.0" when self-signed; omitted when empty.
}

// SetLifetime sets iat to issued, in whole seconds, and exp to exactly
// minutes×60 seconds later, which is how IVS relates them (a 20160-minute
// token has exp-iat = 1209600). minutes must be in 1..MaxDurationMinutes, the
// range CreateParticipantToken accepts.
func (c *Claims) SetLifetime(issued time.Time, minutes int) error {
	if minutes < 1 || minutes > MaxDurationMinutes {
		return fmt.Errorf("%w: duration %d minutes is outside 1..%d", ErrInvalidClaims, minutes, MaxDurationMinutes)
	}
	c.IssuedAt = issued.Unix()
	c.ExpiresAt = c.IssuedAt + int64(minutes)*60
	return nil
}

// claimsJSON fixes the member order and omission rules of Claims' JSON form.
type claimsJSON struct {
	ExpiresAt    int64             `json:"exp"`
	IssuedAt     int64             `json:"iat"`
	NotBefore    int64             `json:"nbf,omitempty"`
	ID           string            `json:"jti"`
	Resource     string            `json:"resource"`
	Topic        string            `json:"topic"`
	EventsURL    string            `json:"events_url"`
	WhipURL      string            `json:"whip_url"`
	UserID       string            `json:"user_id,omitempty"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	Capabilities Capabilities      `json:"capabilities"`
	Version      string            `json:"version,omitempty"`
}

// MarshalJSON writes the claims the way IVS shapes them.
func (c Claims) MarshalJSON() ([]byte, error) {
	return json.Marshal(claimsJSON{
		ExpiresAt:    c.ExpiresAt,
		IssuedAt:     c.IssuedAt,
		NotBefore:    c.NotBefore,
		ID:           c.ParticipantID,
		Resource:     c.Resource,
		Topic:        c.Topic,
		EventsURL:    c.EventsURL,
		WhipURL:      c.WhipURL,
		UserID:       c.UserID,
		Attributes:   c.Attributes,
		Capabilities: c.Capabilities,
		Version:      c.Version,
	})
}

// UnmarshalJSON reads a claims object strictly: member names match exactly
// (encoding/json alone would let "JTI" fill jti), a member may appear only
// once, each known claim must have its JSON type, and nothing may follow the
// object. A null claim counts as absent. Unknown claims (iss, aud, …) are
// ignored. Whether the claims make sense is Validate's job, not this one's.
func (c *Claims) UnmarshalJSON(data []byte) error {
	var out Claims
	err := walkObject(data, func(key string, raw json.RawMessage) error {
		if string(raw) == "null" {
			return nil
		}
		var err error
		switch key {
		case "exp":
			out.ExpiresAt, err = numericDate(key, raw)
		case "iat":
			out.IssuedAt, err = numericDate(key, raw)
		case "nbf":
			out.NotBefore, err = numericDate(key, raw)
		case "jti":
			err = stringClaim(key, raw, &out.ParticipantID)
		case "resource":
			err = stringClaim(key, raw, &out.Resource)
		case "topic":
			err = stringClaim(key, raw, &out.Topic)
		case "events_url":
			err = stringClaim(key, raw, &out.EventsURL)
		case "whip_url":
			err = stringClaim(key, raw, &out.WhipURL)
		case "user_id":
			err = stringClaim(key, raw, &out.UserID)
		case "version":
			err = stringClaim(key, raw, &out.Version)
		case "attributes":
			out.Attributes, err = stringMap(key, raw)
		case "capabilities":
			err = out.Capabilities.UnmarshalJSON(raw)
		}
		return err
	})
	if err != nil {
		return err
	}
	*c = out
	return nil
}

func stringClaim(key string, raw json.RawMessage, dst *string) error {
	return decodeString("claim "+key, raw, dst)
}

// decodeString decodes raw, which must be a JSON string (not null, not a
// number), into dst. name says what it is in the error message.
func decodeString(name string, raw json.RawMessage, dst *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("%w: %s must be a string", ErrMalformed, name)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, name, err)
	}
	return nil
}

// numericDate reads an RFC 7519 NumericDate. The standard allows fractional
// seconds; they are dropped (rounded down), which only ever makes exp earlier.
func numericDate(key string, raw json.RawMessage) (int64, error) {
	s := string(raw)
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return 0, fmt.Errorf("%w: claim %s must be a number", ErrMalformed, key)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < -maxNumericDate || f > maxNumericDate {
		return 0, fmt.Errorf("%w: claim %s is not a date in range: %s", ErrMalformed, key, clip(s))
	}
	return int64(math.Floor(f)), nil
}

func stringMap(key string, raw json.RawMessage) (map[string]string, error) {
	var m map[string]string
	err := walkObject(raw, func(k string, v json.RawMessage) error {
		var s string
		if err := stringClaim(key+"."+clip(k), v, &s); err != nil {
			return err
		}
		if m == nil {
			m = make(map[string]string)
		}
		m[k] = s
		return nil
	})
	return m, err
}

// walkObject calls fn for each member of the JSON object in data, in order,
// and fails on anything that is not exactly one object, or on a member name
// that repeats. Rejecting duplicates closes the door on tokens that mean one
// thing to Rostrum and another to a different JSON parser (RFC 7515 §5.2 lets
// a parser either reject them or keep the last one; rejecting is simpler to
// reason about).
func walkObject(data []byte, fn func(key string, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	seen := make(map[string]struct{}, 16)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		key, ok := tok.(string)
		if !ok { // cannot happen with encoding/json, kept as a guard
			return fmt.Errorf("%w: object key is not a string", ErrMalformed)
		}
		if _, dup := seen[key]; dup {
			return fmt.Errorf("%w: member %q appears twice", ErrMalformed, clip(key))
		}
		seen[key] = struct{}{}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%w: member %q: %v", ErrMalformed, clip(key), err)
		}
		if err := fn(key, raw); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	return nil
}

var (
	// participantIDPattern is the model's ParticipantTokenId pattern
	// ([a-zA-Z0-9-_]*, at most 64) with at least one character: the docs say
	// the jti of a self-signed token is used as the participant id.
	participantIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	// stageARNPattern is the model's StageArn pattern, anchored; the id is
	// captured to compare with topic.
	stageARNPattern = regexp.MustCompile(`^arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/([a-zA-Z0-9-]+)$`)
)

// maxStageARNLen is StageArn's max length in the model.
const maxStageARNLen = 128

// Validate is ValidateWith with the given leeway and DefaultMaxLifetime.
func (c Claims) Validate(now time.Time, leeway time.Duration) error {
	return c.ValidateWith(now, Limits{Leeway: leeway})
}

// ValidateWith checks that the claims describe a token that may be used at
// now.
//
// Time: the token is expired (ErrExpired) once now reaches exp+leeway; it is
// not yet valid (ErrNotYetValid) while iat or nbf is later than now+leeway;
// it is invalid (ErrInvalidClaims) when exp − iat is longer than the
// maximum lifetime, whatever the clock says.
//
// Shape (ErrInvalidClaims): exp and iat are present, in range, and exp is after
// iat; jti matches ^[a-zA-Z0-9-_]{1,64}$ because it becomes the participant id;
// resource is a stage ARN and topic is that ARN's stage id; events_url is a
// ws:// or wss:// URL without fragment (what the Web SDK insists on) and
// whip_url an http:// or https:// URL. Whether the stage exists and whether the
// URLs point at this server is for the caller to check.
func (c Claims) ValidateWith(now time.Time, l Limits) error {
	if err := c.checkShape(); err != nil {
		return err
	}
	max := l.MaxLifetime
	if max <= 0 {
		max = DefaultMaxLifetime
	}
	// Compared in seconds: checkShape bounds both dates to 0..year 9999,
	// whose difference would overflow a Duration but not an int64.
	if life := c.ExpiresAt - c.IssuedAt; life > int64(max/time.Second) {
		return fmt.Errorf("%w: exp − iat is %s, more than the %s a token may live", ErrInvalidClaims,
			fmtLifetime(life), fmtLifetime(int64(max/time.Second)))
	}
	leeway := l.Leeway
	if leeway < 0 {
		leeway = 0
	}
	if !now.Before(time.Unix(c.ExpiresAt, 0).Add(leeway)) {
		return fmt.Errorf("%w: exp %s is not after %s", ErrExpired,
			time.Unix(c.ExpiresAt, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	latest := now.Add(leeway)
	if time.Unix(c.IssuedAt, 0).After(latest) {
		return fmt.Errorf("%w: iat %s is in the future", ErrNotYetValid,
			time.Unix(c.IssuedAt, 0).UTC().Format(time.RFC3339))
	}
	if c.NotBefore != 0 && time.Unix(c.NotBefore, 0).After(latest) {
		return fmt.Errorf("%w: nbf %s is in the future", ErrNotYetValid,
			time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// fmtLifetime writes seconds as days and hours, or as a Duration below a
// day: "3650d0h", "336h0m0s".
func fmtLifetime(sec int64) string {
	if sec >= 86400 {
		return fmt.Sprintf("%dd%dh", sec/86400, sec%86400/3600)
	}
	return (time.Duration(sec) * time.Second).String()
}

// checkShape holds the time-independent rules of Validate. Sign applies it
// too, so Rostrum never mints a token it would itself refuse.
func (c Claims) checkShape() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidClaims}, args...)...)
	}
	if c.ExpiresAt == 0 {
		return bad("exp is missing")
	}
	if c.IssuedAt == 0 {
		return bad("iat is missing")
	}
	for _, d := range []struct {
		name string
		v    int64
	}{{"exp", c.ExpiresAt}, {"iat", c.IssuedAt}, {"nbf", c.NotBefore}} {
		if d.v < 0 || d.v > maxNumericDate {
			return bad("%s %d is out of range", d.name, d.v)
		}
	}
	if c.ExpiresAt <= c.IssuedAt {
		return bad("exp %d is not after iat %d", c.ExpiresAt, c.IssuedAt)
	}
	if !participantIDPattern.MatchString(c.ParticipantID) {
		return bad("jti %q must match [a-zA-Z0-9-_]{1,64}", clip(c.ParticipantID))
	}
	m := stageARNPattern.FindStringSubmatch(c.Resource)
	if len(c.Resource) > maxStageARNLen || m == nil {
		return bad("resource %q is not a stage ARN", clip(c.Resource))
	}
	if c.Topic != m[1] {
		return bad("topic %q is not the stage id %q of resource", clip(c.Topic), m[1])
	}
	if err := checkURL("events_url", c.EventsURL, "ws", "wss"); err != nil {
		return err
	}
	return checkURL("whip_url", c.WhipURL, "http", "https")
}

func checkURL(name, raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.Host == "" || u.User != nil || strings.ContainsAny(raw, "# \t\r\n") {
		return fmt.Errorf("%w: %s %q is not an absolute URL without fragment or whitespace", ErrInvalidClaims, name, clip(raw))
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return fmt.Errorf("%w: %s %q must use %s", ErrInvalidClaims, name, clip(raw), strings.Join(schemes, " or "))
}
