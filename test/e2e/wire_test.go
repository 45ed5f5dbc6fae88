package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
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
