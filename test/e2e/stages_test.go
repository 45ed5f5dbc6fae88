package e2e

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/smithy-go"

	"github.com/rostrum-dev/rostrum/internal/token"
)

// apiErrorCode returns the AWS error code of err, as a client sees it.
func apiErrorCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an AWS API error, got %v", err)
	}
	return ae.ErrorCode()
}

func TestCreateStageWithTokensAsIVSDoes(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	out, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{
		Name: aws.String("demo-stage"),
		Tags: map[string]string{"team": "video"},
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{
			{UserId: aws.String("alice"), Duration: aws.Int32(60), Attributes: map[string]string{"displayName": "Alice"}},
			{Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := out.Stage
	if !strings.HasPrefix(*st.Arn, "arn:aws:ivs:us-east-1:123456789012:stage/") || len(strings.TrimPrefix(*st.Arn, "arn:aws:ivs:us-east-1:123456789012:stage/")) != 12 {
		t.Errorf("stage ARN %q does not have IVS's form", *st.Arn)
	}
	if *st.Name != "demo-stage" || st.Tags["team"] != "video" {
		t.Errorf("stage = %+v", st)
	}
	if st.Endpoints == nil || *st.Endpoints.Whip != ts.BaseURL+"/whip" || !strings.HasPrefix(*st.Endpoints.Events, "ws://127.0.0.1:") {
		t.Errorf("endpoints = %+v, want this server's own listeners", st.Endpoints)
	}
	if len(out.ParticipantTokens) != 2 {
		t.Fatalf("got %d tokens, want 2", len(out.ParticipantTokens))
	}
	alice := out.ParticipantTokens[0]
	if *alice.UserId != "alice" || aws.ToInt32(alice.Duration) != 60 || len(alice.Capabilities) != 2 {
		t.Errorf("alice's token = %+v", alice)
	}
	claims := verifyToken(t, ts, *alice.Token)
	if claims.ParticipantID != *alice.ParticipantId || claims.Resource != *st.Arn || claims.UserID != "alice" ||
		claims.Attributes["displayName"] != "Alice" || !claims.Capabilities.Publish || !claims.Capabilities.Subscribe {
		t.Errorf("claims = %+v", claims)
	}
	if claims.ExpiresAt-claims.IssuedAt != 3600 {
		t.Errorf("exp-iat = %d, want duration×60 = 3600", claims.ExpiresAt-claims.IssuedAt)
	}
	if got := alice.ExpirationTime.Unix(); got != claims.ExpiresAt {
		t.Errorf("expirationTime %d != exp claim %d", got, claims.ExpiresAt)
	}
	sub := verifyToken(t, ts, *out.ParticipantTokens[1].Token)
	if sub.Capabilities.Publish || !sub.Capabilities.Subscribe || aws.ToInt32(out.ParticipantTokens[1].Duration) != 720 {
		t.Errorf("subscribe-only token: claims %+v duration %v", sub, out.ParticipantTokens[1].Duration)
	}
}

// verifyToken checks a token's signature with the server's key and returns
// its claims.
func verifyToken(t *testing.T, ts *testServer, raw string) token.Claims {
	t.Helper()
	p, err := token.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(ts.service().SigningKey().Public()); err != nil {
		t.Fatalf("token does not verify with the server key: %v", err)
	}
	if err := p.Claims.Validate(time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	return p.Claims
}

func TestCreateParticipantTokenClaimsMatchIVS(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	if err != nil {
		t.Fatal(err)
	}
	arn := *st.Stage.Arn
	out, err := c.CreateParticipantToken(bg, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	tok := out.ParticipantToken
	if aws.ToInt32(tok.Duration) != 720 || len(tok.Capabilities) != 2 || len(*tok.ParticipantId) != 12 {
		t.Errorf("defaults: %+v", tok)
	}
	// The payload has IVS's claim names, and no user_id/attributes when empty.
	parts := strings.Split(*tok.Token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"exp", "iat", "jti", "resource", "topic", "events_url", "whip_url", "capabilities", "version"} {
		if _, ok := m[k]; !ok {
			t.Errorf("claim %q missing from %s", k, payload)
		}
	}
	for _, k := range []string{"user_id", "attributes"} {
		if _, ok := m[k]; ok {
			t.Errorf("claim %q present though empty: %s", k, payload)
		}
	}
	if m["topic"] != arn[strings.LastIndex(arn, "/")+1:] || m["whip_url"] != ts.BaseURL+"/whip" {
		t.Errorf("payload %s", payload)
	}
	// Each token is a new participant.
	out2, _ := c.CreateParticipantToken(bg, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn)})
	if *out2.ParticipantToken.ParticipantId == *tok.ParticipantId {
		t.Error("two tokens share a participant id")
	}

	// Attributes beyond 1 KB in total are refused, naming the field.
	_, err = c.CreateParticipantToken(bg, &ivsrealtime.CreateParticipantTokenInput{
		StageArn: aws.String(arn), Attributes: map[string]string{"big": strings.Repeat("x", 1100)},
	})
	var ve *types.ValidationException
	if !errors.As(err, &ve) || !strings.Contains(*ve.ExceptionMessage, "attributes") {
		t.Errorf("1 KB attributes: got %v", err)
	}
	// A missing stage is ResourceNotFoundException.
	_, err = c.CreateParticipantToken(bg, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn + "x")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("missing stage: got %v", err)
	}
}

func TestStageLifecycle(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Name: aws.String("one")})
	if err != nil {
		t.Fatal(err)
	}
	arn := st.Stage.Arn
	got, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: arn})
	if err != nil || *got.Stage.Name != "one" || got.Stage.ActiveSessionId != nil {
		t.Fatalf("GetStage = %+v, %v", got, err)
	}
	if rec := got.Stage.AutoParticipantRecordingConfiguration; rec == nil || *rec.StorageConfigurationArn != "" {
		t.Errorf("recording configuration of a stage without recording = %+v", rec)
	}
	up, err := c.UpdateStage(bg, &ivsrealtime.UpdateStageInput{Arn: arn, Name: aws.String("renamed")})
	if err != nil || *up.Stage.Name != "renamed" || up.Stage.Endpoints == nil {
		t.Fatalf("UpdateStage = %+v, %v", up, err)
	}
	got, _ = c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: arn})
	if *got.Stage.Name != "renamed" {
		t.Errorf("name after update = %q", *got.Stage.Name)
	}
	if _, err := c.DeleteStage(bg, &ivsrealtime.DeleteStageInput{Arn: arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: arn})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(*nf.ExceptionMessage, *arn) {
		t.Errorf("GetStage after delete: %v", err)
	}
	_, err = c.DeleteStage(bg, &ivsrealtime.DeleteStageInput{Arn: arn})
	if !errors.As(err, &nf) {
		t.Errorf("DeleteStage twice: %v", err)
	}
	_, err = c.UpdateStage(bg, &ivsrealtime.UpdateStageInput{Arn: arn, Name: aws.String("x")})
	if !errors.As(err, &nf) {
		t.Errorf("UpdateStage of deleted stage: %v", err)
	}
}

func TestStageRecordingConfigurationNeedsExistingStorage(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	missing := "arn:aws:ivs:us-east-1:123456789012:storage-configuration/AbCdEfGhIjKl"
	_, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{
		AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: aws.String(missing)},
	})
	var ve *types.ValidationException
	if !errors.As(err, &ve) || !strings.Contains(*ve.ExceptionMessage, "storageConfigurationArn") {
		t.Fatalf("missing storage configuration: %v", err)
	}
	sc, err := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String("my-recordings")},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{
		AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
			StorageConfigurationArn: sc.StorageConfiguration.Arn,
			MediaTypes:              []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioOnly},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := st.Stage.AutoParticipantRecordingConfiguration
	if *rec.StorageConfigurationArn != *sc.StorageConfiguration.Arn || rec.MediaTypes[0] != types.ParticipantRecordingMediaTypeAudioOnly ||
		*rec.HlsConfiguration.TargetSegmentDurationSeconds != 6 || rec.ThumbnailConfiguration.RecordingMode != types.ThumbnailRecordingModeDisabled {
		t.Errorf("recording configuration = %+v", rec)
	}
	// The stage uses the storage configuration: deleting it conflicts.
	_, err = c.DeleteStorageConfiguration(bg, &ivsrealtime.DeleteStorageConfigurationInput{Arn: sc.StorageConfiguration.Arn})
	var ce *types.ConflictException
	if !errors.As(err, &ce) {
		t.Fatalf("delete storage configuration in use: %v", err)
	}
	// Disabling recording ("" ARN) releases it.
	up, err := c.UpdateStage(bg, &ivsrealtime.UpdateStageInput{Arn: st.Stage.Arn,
		AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: aws.String("")}})
	if err != nil || *up.Stage.AutoParticipantRecordingConfiguration.StorageConfigurationArn != "" {
		t.Fatalf("disable recording: %+v %v", up, err)
	}
	if up.Stage.AutoParticipantRecordingConfiguration.MediaTypes[0] != types.ParticipantRecordingMediaTypeAudioVideo {
		t.Errorf("disabling recording did not reset the other members: %+v", up.Stage.AutoParticipantRecordingConfiguration)
	}
	if _, err := c.DeleteStorageConfiguration(bg, &ivsrealtime.DeleteStorageConfigurationInput{Arn: sc.StorageConfiguration.Arn}); err != nil {
		t.Fatalf("delete unused storage configuration: %v", err)
	}
}

func TestListStagesPaginates(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	want := map[string]bool{}
	for i := 0; i < 7; i++ {
		st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
		if err != nil {
			t.Fatal(err)
		}
		want[*st.Stage.Arn] = true
	}
	seen := map[string]bool{}
	pages := 0
	p := ivsrealtime.NewListStagesPaginator(c, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(3)})
	for p.HasMorePages() {
		page, err := p.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Stages) > 3 {
			t.Errorf("page of %d > maxResults 3", len(page.Stages))
		}
		for _, s := range page.Stages {
			if seen[*s.Arn] {
				t.Errorf("stage %s on two pages", *s.Arn)
			}
			seen[*s.Arn] = true
		}
	}
	if pages != 3 || len(seen) != 7 {
		t.Errorf("pages=%d seen=%d, want 3 pages and 7 stages", pages, len(seen))
	}
	// Default page size 50 returns everything and no token.
	all, err := c.ListStages(bg, &ivsrealtime.ListStagesInput{})
	if err != nil || len(all.Stages) != 7 || all.NextToken != nil {
		t.Errorf("ListStages = %d stages, token %v, err %v", len(all.Stages), all.NextToken, err)
	}
	// A token that is not one of ours is a ValidationException.
	_, err = c.ListStages(bg, &ivsrealtime.ListStagesInput{NextToken: aws.String("bm90LWEtdG9rZW4")})
	if code := apiErrorCode(t, err); code != "ValidationException" {
		t.Errorf("bad token: %s", code)
	}
	// A token from another list is refused too.
	first, _ := c.ListStages(bg, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(1)})
	_, err = c.ListEncoderConfigurations(bg, &ivsrealtime.ListEncoderConfigurationsInput{NextToken: first.NextToken})
	if code := apiErrorCode(t, err); code != "ValidationException" {
		t.Errorf("token of another list: %s", code)
	}
	// An empty list is [] (the member is required), never null.
	status, _, body := ts.call(t, "POST", "/ListEncoderConfigurations", []byte(`{}`))
	if status != 200 || string(body) != `{"encoderConfigurations":[]}` {
		t.Errorf("empty list: %d %s", status, body)
	}
}

func TestStageQuotaIsServiceQuotaExceeded(t *testing.T) {
	ts := startServer(t, "", func(c *configT) { c.Quotas.Stages = 2 })
	c := ts.client()
	for i := 0; i < 2; i++ {
		if _, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	var qe *types.ServiceQuotaExceededException
	if !errors.As(err, &qe) {
		t.Fatalf("third stage with quota 2: %v", err)
	}
}

func TestOtherAccountsResourcesAreNotVisible(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	foreign := aws.String("arn:aws:ivs:us-east-1:999999999999:stage/AbCdEfGhIjKl")
	_, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: foreign})
	var ad *types.AccessDeniedException
	if !errors.As(err, &ad) {
		t.Errorf("GetStage of another account's stage: %v", err)
	}
	// Tag operations declare no AccessDeniedException: ResourceNotFound.
	_, err = c.ListTagsForResource(bg, &ivsrealtime.ListTagsForResourceInput{ResourceArn: foreign})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("ListTagsForResource of another account's stage: %v", err)
	}
	// Another region's ARN is not found.
	_, err = c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String("arn:aws:ivs:eu-west-1:123456789012:stage/AbCdEfGhIjKl")})
	if !errors.As(err, &nf) {
		t.Errorf("GetStage in another region: %v", err)
	}
}
