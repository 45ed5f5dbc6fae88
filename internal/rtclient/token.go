package rtclient

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrMalformedToken is returned by ParseToken for a string that is not a
// compact JWS with a JSON object as its payload.
var ErrMalformedToken = errors.New("rtclient: malformed participant token")

// TokenInfo holds the claims of a participant token that a client needs.
// The claim names are IVS's (IVS-BEHAVIOUR.md §1.1).
type TokenInfo struct {
	ParticipantID string // jti
	StageARN      string // resource
	Topic         string // topic: the stage id
	EventsURL     string // events_url: the events websocket (ws:// or wss://)
	WhipURL       string // whip_url: base of the publish and subscribe endpoints
	UserID        string // user_id
	Publish       bool   // capabilities.allow_publish
	Subscribe     bool   // capabilities.allow_subscribe

	Attributes map[string]string // attributes; nil when absent
	Version    string            // version
	IssuedAt   time.Time         // iat; zero when absent
	ExpiresAt  time.Time         // exp; zero when absent
}

// tokenClaims is the JSON form of the claims ParseToken reads.
type tokenClaims struct {
	Exp          *float64          `json:"exp"`
	Iat          *float64          `json:"iat"`
	Jti          string            `json:"jti"`
	Resource     string            `json:"resource"`
	Topic        string            `json:"topic"`
	EventsURL    string            `json:"events_url"`
	WhipURL      string            `json:"whip_url"`
	UserID       string            `json:"user_id"`
	Attributes   map[string]string `json:"attributes"`
	Version      string            `json:"version"`
	Capabilities struct {
		Publish   bool `json:"allow_publish"`
		Subscribe bool `json:"allow_subscribe"`
	} `json:"capabilities"`
}

// ParseToken reads the claims of a participant token without verifying its
// signature, as IVS's clients do (IVS-BEHAVIOUR.md §1.3): a client never has
// the key. It checks only the form: three base64url parts, the middle one a
// JSON object. Whether the token has expired is the caller's business
// (TokenInfo.ExpiresAt) and the server's.
func ParseToken(raw string) (TokenInfo, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return TokenInfo{}, fmt.Errorf("%w: want 3 dot-separated parts, have %d", ErrMalformedToken, len(parts))
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return TokenInfo{}, fmt.Errorf("%w: contains whitespace", ErrMalformedToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return TokenInfo{}, fmt.Errorf("%w: payload: %v", ErrMalformedToken, err)
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return TokenInfo{}, fmt.Errorf("%w: payload: %v", ErrMalformedToken, err)
	}
	info := TokenInfo{
		ParticipantID: c.Jti,
		StageARN:      c.Resource,
		Topic:         c.Topic,
		EventsURL:     c.EventsURL,
		WhipURL:       c.WhipURL,
		UserID:        c.UserID,
		Publish:       c.Capabilities.Publish,
		Subscribe:     c.Capabilities.Subscribe,
		Attributes:    c.Attributes,
		Version:       c.Version,
	}
	if c.Iat != nil {
		info.IssuedAt = time.Unix(int64(*c.Iat), 0)
	}
	if c.Exp != nil {
		info.ExpiresAt = time.Unix(int64(*c.Exp), 0)
	}
	return info, nil
}
