package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// AWS reserves tag keys beginning with aws: (in any case) for the tags it
// sets itself: users can neither set nor remove them. Every operation that
// takes tags refuses them with a ValidationException, and creates nothing.
func TestReservedAWSTagKeysAreRefused(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Tags: map[string]string{"awsome": "ok", "aws-team": "ok", "x:aws:y": "ok"}})
	if err != nil {
		t.Fatalf("keys that merely contain aws: %v", err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	const want = "Invalid tag key. Tag keys cannot start with 'aws:' (case insensitive)"
	for _, key := range []string{"aws:cloudformation:stack-name", "AWS:env", "Aws:x", "aws:"} {
		tags := map[string]string{"fine": "1", key: "v"}
		calls := map[string]func() error{
			"CreateStage": func() error {
				_, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Tags: tags})
				return err
			},
			"CreateEncoderConfiguration": func() error {
				_, err := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{Tags: tags})
				return err
			},
			"CreateStorageConfiguration": func() error {
				_, err := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("b-1")}, Tags: tags})
				return err
			},
			"CreateIngestConfiguration": func() error {
				_, err := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, Tags: tags})
				return err
			},
			"ImportPublicKey": func() error {
				_, err := c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(pemPublicKey(t, &k.PublicKey)), Tags: tags})
				return err
			},
			"TagResource": func() error {
				_, err := c.TagResource(bg, &ivsrealtime.TagResourceInput{ResourceArn: st.Stage.Arn, Tags: tags})
				return err
			},
			"UntagResource": func() error {
				_, err := c.UntagResource(bg, &ivsrealtime.UntagResourceInput{ResourceArn: st.Stage.Arn, TagKeys: []string{"fine", key}})
				return err
			},
		}
		for op, call := range calls {
			var ve *types.ValidationException
			if err := call(); !errors.As(err, &ve) || aws.ToString(ve.ExceptionMessage) != want {
				t.Errorf("%s with tag key %q: %v", op, key, err)
			}
		}
	}
	// Nothing was created or changed.
	stages, _ := c.ListStages(bg, &ivsrealtime.ListStagesInput{})
	encoders, _ := c.ListEncoderConfigurations(bg, &ivsrealtime.ListEncoderConfigurationsInput{})
	storages, _ := c.ListStorageConfigurations(bg, &ivsrealtime.ListStorageConfigurationsInput{})
	ingests, _ := c.ListIngestConfigurations(bg, &ivsrealtime.ListIngestConfigurationsInput{})
	keys, _ := c.ListPublicKeys(bg, &ivsrealtime.ListPublicKeysInput{})
	if len(stages.Stages) != 1 || len(encoders.EncoderConfigurations)+len(storages.StorageConfigurations)+len(ingests.IngestConfigurations)+len(keys.PublicKeys) != 0 {
		t.Errorf("refused requests created resources: %d stages, %d+%d+%d+%d configurations and keys", len(stages.Stages),
			len(encoders.EncoderConfigurations), len(storages.StorageConfigurations), len(ingests.IngestConfigurations), len(keys.PublicKeys))
	}
	tags, err := c.ListTagsForResource(bg, &ivsrealtime.ListTagsForResourceInput{ResourceArn: st.Stage.Arn})
	if err != nil || len(tags.Tags) != 3 {
		t.Errorf("stage tags after refused changes: %v %v", tags, err)
	}
}

// Members the model makes optional that AWS still answers when empty (the
// CLI's examples of real responses show them): a resource's "tags": {}, an
// ingest configuration's "userId": "", and, per the model, a participant's
// recordingS3BucketName and recordingS3Prefix "" when it is not recorded.
// aws-sdk-go-v2 tells present-and-empty (a non-nil empty map, a pointer to
// "") from absent (nil).
func TestEmptyMembersArePresentAsAWSAnswers(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	noTags := func(what string, tags map[string]string) {
		t.Helper()
		if tags == nil || len(tags) != 0 {
			t.Errorf("%s: tags = %#v, want present and empty", what, tags)
		}
	}

	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	if err != nil {
		t.Fatal(err)
	}
	noTags("CreateStage", st.Stage.Tags)
	g, _ := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: st.Stage.Arn})
	noTags("GetStage", g.Stage.Tags)
	up, _ := c.UpdateStage(bg, &ivsrealtime.UpdateStageInput{Arn: st.Stage.Arn, Name: aws.String("renamed")})
	noTags("UpdateStage", up.Stage.Tags)
	stages, _ := c.ListStages(bg, &ivsrealtime.ListStagesInput{})
	noTags("ListStages", stages.Stages[0].Tags)
	// Untagging the last tag leaves {} too.
	tagged, _ := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Tags: map[string]string{"a": "1"}})
	c.UntagResource(bg, &ivsrealtime.UntagResourceInput{ResourceArn: tagged.Stage.Arn, TagKeys: []string{"a"}})
	g, _ = c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: tagged.Stage.Arn})
	noTags("GetStage after the last tag is removed", g.Stage.Tags)

	ec, _ := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{})
	noTags("CreateEncoderConfiguration", ec.EncoderConfiguration.Tags)
	gec, _ := c.GetEncoderConfiguration(bg, &ivsrealtime.GetEncoderConfigurationInput{Arn: ec.EncoderConfiguration.Arn})
	noTags("GetEncoderConfiguration", gec.EncoderConfiguration.Tags)
	sc, _ := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("b-1")}})
	noTags("CreateStorageConfiguration", sc.StorageConfiguration.Tags)
	gsc, _ := c.GetStorageConfiguration(bg, &ivsrealtime.GetStorageConfigurationInput{Arn: sc.StorageConfiguration.Arn})
	noTags("GetStorageConfiguration", gsc.StorageConfiguration.Tags)
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pk, _ := c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(pemPublicKey(t, &k.PublicKey))})
	noTags("ImportPublicKey", pk.PublicKey.Tags)
	gpk, _ := c.GetPublicKey(bg, &ivsrealtime.GetPublicKeyInput{Arn: pk.PublicKey.Arn})
	noTags("GetPublicKey", gpk.PublicKey.Tags)

	ic, err := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps})
	if err != nil {
		t.Fatal(err)
	}
	emptyUser := func(what string, userID *string) {
		t.Helper()
		if userID == nil || *userID != "" {
			t.Errorf("%s: userId = %v, want present and empty", what, userID)
		}
	}
	emptyUser("CreateIngestConfiguration", ic.IngestConfiguration.UserId)
	noTags("CreateIngestConfiguration", ic.IngestConfiguration.Tags)
	gic, _ := c.GetIngestConfiguration(bg, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.IngestConfiguration.Arn})
	emptyUser("GetIngestConfiguration", gic.IngestConfiguration.UserId)
	noTags("GetIngestConfiguration", gic.IngestConfiguration.Tags)
	uic, _ := c.UpdateIngestConfiguration(bg, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.IngestConfiguration.Arn, StageArn: st.Stage.Arn})
	emptyUser("UpdateIngestConfiguration", uic.IngestConfiguration.UserId)
	lic, _ := c.ListIngestConfigurations(bg, &ivsrealtime.ListIngestConfigurationsInput{})
	emptyUser("ListIngestConfigurations", lic.IngestConfigurations[0].UserId)

	// The same on the wire, for clients that read the JSON themselves.
	_, _, body := ts.call(t, "POST", "/GetIngestConfiguration", []byte(`{"arn":"`+*ic.IngestConfiguration.Arn+`"}`))
	for _, member := range []string{`"userId":""`, `"tags":{}`, `"name":""`} {
		if !strings.Contains(string(body), member) {
			t.Errorf("GetIngestConfiguration has no %s: %s", member, body)
		}
	}

	// A participant of a stage that does not record.
	ctx := testContext(t)
	tok, pid := newToken(t, c, *st.Stage.Arn, "alice")
	joinEvents(t, ctx, tok)
	sid := activeSession(t, c, *st.Stage.Arn)
	var p *types.Participant
	testutil.Eventually(t, "alice recorded", func() bool {
		out, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: st.Stage.Arn, SessionId: aws.String(sid), ParticipantId: aws.String(pid)})
		if err == nil {
			p = out.Participant
		}
		return err == nil
	})
	if p.RecordingS3BucketName == nil || *p.RecordingS3BucketName != "" || p.RecordingS3Prefix == nil || *p.RecordingS3Prefix != "" ||
		p.RecordingState != types.ParticipantRecordingStateDisabled {
		t.Errorf("participant without recording: bucket %v, prefix %v, state %s", p.RecordingS3BucketName, p.RecordingS3Prefix, p.RecordingState)
	}
}

// An account uses only its own resources, wherever it names them: another
// account's ARN is AccessDeniedException as a target (Get, Update, Delete),
// as a reference (CreateStage's storage configuration, an ingest
// configuration's stage) and as a List filter. A resource of one's own that
// does not exist is ResourceNotFoundException where the operation declares
// it, else ValidationException; a filter naming it matches nothing.
func TestAnotherAccountsARNIsAccessDeniedWhereverItIsNamed(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	const (
		foreignStage   = "arn:aws:ivs:us-east-1:999999999999:stage/AbCdEfGhIjKl"
		foreignStorage = "arn:aws:ivs:us-east-1:999999999999:storage-configuration/AbCdEfGhIjKl"
		missingStage   = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl"
		missingStorage = "arn:aws:ivs:us-east-1:123456789012:storage-configuration/AbCdEfGhIjKl"
	)
	st, _ := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	ic, _ := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps})
	recording := func(arn string) *types.AutoParticipantRecordingConfiguration {
		return &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: aws.String(arn)}
	}
	calls := []struct {
		name string
		call func() error
		want string
	}{
		{"GetStage of a foreign stage", func() error {
			_, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(foreignStage)})
			return err
		}, "AccessDeniedException"},
		{"CreateStage recording to a foreign storage configuration", func() error {
			_, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{AutoParticipantRecordingConfiguration: recording(foreignStorage)})
			return err
		}, "AccessDeniedException"},
		{"UpdateStage recording to a foreign storage configuration", func() error {
			_, err := c.UpdateStage(bg, &ivsrealtime.UpdateStageInput{Arn: st.Stage.Arn, AutoParticipantRecordingConfiguration: recording(foreignStorage)})
			return err
		}, "AccessDeniedException"},
		{"CreateIngestConfiguration for a foreign stage", func() error {
			_, err := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, StageArn: aws.String(foreignStage)})
			return err
		}, "AccessDeniedException"},
		{"UpdateIngestConfiguration to a foreign stage", func() error {
			_, err := c.UpdateIngestConfiguration(bg, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.IngestConfiguration.Arn, StageArn: aws.String(foreignStage)})
			return err
		}, "AccessDeniedException"},
		{"ListIngestConfigurations filtered by a foreign stage", func() error {
			_, err := c.ListIngestConfigurations(bg, &ivsrealtime.ListIngestConfigurationsInput{FilterByStageArn: aws.String(foreignStage)})
			return err
		}, "AccessDeniedException"},
		{"StartComposition of a foreign stage", func() error {
			_, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: aws.String(foreignStage), Destinations: []types.DestinationConfiguration{
				{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: aws.String(missingStorage), EncoderConfigurationArns: []string{"arn:aws:ivs:us-east-1:123456789012:encoder-configuration/AbCdEfGhIjKl"}}},
			}})
			return err
		}, "AccessDeniedException"},
		{"StartComposition recording to a foreign storage configuration", func() error {
			_, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: st.Stage.Arn, Destinations: []types.DestinationConfiguration{
				{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: aws.String(foreignStorage), EncoderConfigurationArns: []string{"arn:aws:ivs:us-east-1:123456789012:encoder-configuration/AbCdEfGhIjKl"}}},
			}})
			return err
		}, "AccessDeniedException"},
		{"StartComposition recording to a missing storage configuration", func() error {
			_, err := c.StartComposition(bg, &ivsrealtime.StartCompositionInput{StageArn: st.Stage.Arn, Destinations: []types.DestinationConfiguration{
				{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: aws.String(missingStorage), EncoderConfigurationArns: []string{"arn:aws:ivs:us-east-1:123456789012:encoder-configuration/AbCdEfGhIjKl"}}},
			}})
			return err
		}, "ResourceNotFoundException"},
		{"ListCompositions filtered by a foreign stage", func() error {
			_, err := c.ListCompositions(bg, &ivsrealtime.ListCompositionsInput{FilterByStageArn: aws.String(foreignStage)})
			return err
		}, "AccessDeniedException"},
		{"GetComposition of a foreign composition", func() error {
			_, err := c.GetComposition(bg, &ivsrealtime.GetCompositionInput{Arn: aws.String("arn:aws:ivs:us-east-1:999999999999:composition/AbCdEfGhIjKl")})
			return err
		}, "AccessDeniedException"},
		{"ListStageSessions of a foreign stage", func() error {
			_, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(foreignStage)})
			return err
		}, "AccessDeniedException"},
		{"CreateStage recording to a missing storage configuration", func() error {
			_, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{AutoParticipantRecordingConfiguration: recording(missingStorage)})
			return err
		}, "ValidationException"},
		{"UpdateStage recording to a missing storage configuration", func() error {
			_, err := c.UpdateStage(bg, &ivsrealtime.UpdateStageInput{Arn: st.Stage.Arn, AutoParticipantRecordingConfiguration: recording(missingStorage)})
			return err
		}, "ResourceNotFoundException"},
		{"CreateIngestConfiguration for a missing stage", func() error {
			_, err := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, StageArn: aws.String(missingStage)})
			return err
		}, "ValidationException"},
		{"UpdateIngestConfiguration to a missing stage", func() error {
			_, err := c.UpdateIngestConfiguration(bg, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.IngestConfiguration.Arn, StageArn: aws.String(missingStage)})
			return err
		}, "ResourceNotFoundException"},
	}
	for _, tc := range calls {
		if code := apiErrorCode(t, tc.call()); code != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, code, tc.want)
		}
	}
	// Nothing was created or changed by the refused calls.
	stages, _ := c.ListStages(bg, &ivsrealtime.ListStagesInput{})
	ingests, _ := c.ListIngestConfigurations(bg, &ivsrealtime.ListIngestConfigurationsInput{})
	if len(stages.Stages) != 1 || len(ingests.IngestConfigurations) != 1 || ingests.IngestConfigurations[0].StageArn == nil || *ingests.IngestConfigurations[0].StageArn != "" {
		t.Errorf("after refused calls: %d stages, ingest configurations %+v", len(stages.Stages), ingests.IngestConfigurations)
	}
	// A filter naming a stage of one's own that does not exist matches nothing.
	out, err := c.ListIngestConfigurations(bg, &ivsrealtime.ListIngestConfigurationsInput{FilterByStageArn: aws.String(missingStage)})
	if err != nil || out.IngestConfigurations == nil || len(out.IngestConfigurations) != 0 {
		t.Errorf("ListIngestConfigurations filtered by a missing stage: %+v %v", out, err)
	}
}
