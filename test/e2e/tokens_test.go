package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// A self-signed token may live as long as the longest token
// CreateParticipantToken mints, 14 days, and no longer: one made to last ten
// years is refused (TOKEN_INVALID on the events channel, 401 on WHIP), so a
// leaked token cannot open a stage for good.
func TestSelfSignedTokenLifetimeIsBounded(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	mint := selfSigner(t, c, stage)

	fourteenDays := mint("fourteen-days", 14*24*time.Hour)
	ev := joinEvents(t, ctx, fourteenDays)
	waitState(t, ctx, ev, func(s rtclient.StageState) bool { _, ok := s.Participant("fourteen-days"); return ok })

	tenYears := mint("ten-years", 10*365*24*time.Hour)
	refused, err := rtclient.ConnectEvents(ctx, tenYears)
	if err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, refused, "aws:ivs:JOIN_ERROR", `"TOKEN_INVALID"`)
	refused.Close()
	_, err = rtclient.Publish(ctx, tenYears, rtclient.PublishOptions{Video: rtclient.NewSyntheticSource(rtclient.SyntheticOptions{}), LoopbackOnly: true})
	var he *rtclient.HTTPError
	if !errors.As(err, &he) || he.Status != 401 {
		t.Errorf("publish with a ten-year token: %v", err)
	}
}

// --self-signed-token-max-lifetime sets the bound for self-signed tokens
// only: with one hour, a two-hour self-signed token is refused, a half-hour
// one joins, and tokens the server mints keep their 12 hours.
func TestSelfSignedTokenMaxLifetimeFlag(t *testing.T) {
	ts := startServer(t, "", func(c *configT) { c.SelfSignedTokenMaxLifetime = time.Hour })
	c := ts.client()
	ctx := testContext(t)
	stage := newStage(t, c)
	mint := selfSigner(t, c, stage)
	refused, err := rtclient.ConnectEvents(ctx, mint("two-hours", 2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, refused, "aws:ivs:JOIN_ERROR", `"TOKEN_INVALID"`)
	refused.Close()
	ev := joinEvents(t, ctx, mint("half-hour", 30*time.Minute))
	minted, pid := newToken(t, c, stage, "minted") // 720 minutes
	joinEvents(t, ctx, minted)
	waitState(t, ctx, ev, func(s rtclient.StageState) bool {
		_, a := s.Participant("half-hour")
		_, b := s.Participant(pid)
		return a && b
	})
}

// selfSigner imports a new P-384 public key and returns a function that
// mints self-signed tokens for the stage with it, living as long as asked.
func selfSigner(t *testing.T, c *ivsrealtime.Client, stage string) func(pid string, life time.Duration) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pk, err := c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(pemPublicKey(t, &key.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	g := mustStage(t, c, stage)
	return func(pid string, life time.Duration) string {
		now := time.Now()
		return signES384(t, key, *pk.PublicKey.Arn, token.Claims{
			IssuedAt: now.Unix(), ExpiresAt: now.Add(life).Unix(), ParticipantID: pid,
			Resource: stage, Topic: stage[strings.LastIndex(stage, "/")+1:],
			EventsURL: *g.Endpoints.Events, WhipURL: *g.Endpoints.Whip,
			Capabilities: token.Capabilities{Publish: true, Subscribe: true}, Version: "1.0",
		})
	}
}
