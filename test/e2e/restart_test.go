package e2e

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
)

// Everything acknowledged survives a restart, and tokens minted before it
// still verify with the same persisted signing key.
func TestStatePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir)
	c := ts.client()
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Name: aws.String("kept"), Tags: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := c.CreateParticipantToken(bg, &ivsrealtime.CreateParticipantTokenInput{StageArn: st.Stage.Arn})
	ec, _ := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String("enc")})
	sc, _ := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("bkt")}})
	ic, _ := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps})
	sid, err := ts.service().StartStageSession(bg, *st.Stage.Arn)
	if err != nil {
		t.Fatal(err)
	}
	oldKey := ts.service().SigningKey().ID
	ts.stop(t)

	ts2 := startServer(t, dir)
	c2 := ts2.client()
	g, err := c2.GetStage(bg, &ivsrealtime.GetStageInput{Arn: st.Stage.Arn})
	if err != nil || *g.Stage.Name != "kept" || g.Stage.Tags["a"] != "1" || aws.ToString(g.Stage.ActiveSessionId) != sid {
		t.Fatalf("stage after restart: %+v %v", g, err)
	}
	if ts2.service().SigningKey().ID != oldKey {
		t.Error("signing key changed across restart")
	}
	verifyToken(t, ts2, *tok.ParticipantToken.Token)
	if _, err := c2.GetEncoderConfiguration(bg, &ivsrealtime.GetEncoderConfigurationInput{Arn: ec.EncoderConfiguration.Arn}); err != nil {
		t.Error(err)
	}
	if _, err := c2.GetStorageConfiguration(bg, &ivsrealtime.GetStorageConfigurationInput{Arn: sc.StorageConfiguration.Arn}); err != nil {
		t.Error(err)
	}
	got, err := c2.GetIngestConfiguration(bg, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.IngestConfiguration.Arn})
	if err != nil || *got.IngestConfiguration.StreamKey != *ic.IngestConfiguration.StreamKey {
		t.Errorf("ingest configuration after restart: %+v %v", got, err)
	}
	// New resources keep a stable order after old ones.
	st2, _ := c2.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	l, _ := c2.ListStages(bg, &ivsrealtime.ListStagesInput{})
	if len(l.Stages) != 2 || *l.Stages[0].Arn != *st.Stage.Arn || *l.Stages[1].Arn != *st2.Stage.Arn {
		t.Errorf("order after restart: %+v", l.Stages)
	}
}
