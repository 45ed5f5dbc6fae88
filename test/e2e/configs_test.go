package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
)

func TestEncoderConfigurationLifecycle(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	def, err := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	v := def.EncoderConfiguration.Video
	if aws.ToInt32(v.Width) != 1280 || aws.ToInt32(v.Height) != 720 || aws.ToFloat32(v.Framerate) != 30 || aws.ToInt32(v.Bitrate) != 2500000 {
		t.Errorf("IVS's defaults are 1280x720 30fps 2.5 Mbps, got %+v", v)
	}
	custom, err := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(1080), Height: aws.Int32(1920), Framerate: aws.Float32(24.5), Bitrate: aws.Int32(6000000)},
		Tags:  map[string]string{"k": "v"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetEncoderConfiguration(bg, &ivsrealtime.GetEncoderConfigurationInput{Arn: custom.EncoderConfiguration.Arn})
	if err != nil || aws.ToFloat32(got.EncoderConfiguration.Video.Framerate) != 24.5 || got.EncoderConfiguration.Tags["k"] != "v" {
		t.Fatalf("GetEncoderConfiguration = %+v, %v", got, err)
	}
	// IVS's documented rules beyond the model: even sides, at most 1920×1080 pixels.
	for _, bad := range []*types.Video{
		{Width: aws.Int32(1281), Height: aws.Int32(720)},
		{Width: aws.Int32(1920), Height: aws.Int32(1920)},
	} {
		_, err := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{Video: bad})
		var ve *types.ValidationException
		if !errors.As(err, &ve) || !strings.Contains(*ve.ExceptionMessage, "video") {
			t.Errorf("video %dx%d: %v", *bad.Width, *bad.Height, err)
		}
	}
	list, err := c.ListEncoderConfigurations(bg, &ivsrealtime.ListEncoderConfigurationsInput{})
	if err != nil || len(list.EncoderConfigurations) != 2 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if _, err := c.DeleteEncoderConfiguration(bg, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: def.EncoderConfiguration.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetEncoderConfiguration(bg, &ivsrealtime.GetEncoderConfigurationInput{Arn: def.EncoderConfiguration.Arn})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("get deleted: %v", err)
	}
}

func TestStorageConfigurationLifecycleAndQuota(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	var arns []string
	for i := 0; i < 5; i++ { // IVS's default quota is 5
		out, err := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{
			Name: aws.String("rec"), S3: &types.S3StorageConfiguration{BucketName: aws.String("bucket-" + string(rune('a'+i)))},
		})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, *out.StorageConfiguration.Arn)
	}
	_, err := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("sixth")}})
	var qe *types.ServiceQuotaExceededException
	if !errors.As(err, &qe) {
		t.Fatalf("sixth storage configuration: %v", err)
	}
	got, err := c.GetStorageConfiguration(bg, &ivsrealtime.GetStorageConfigurationInput{Arn: aws.String(arns[2])})
	if err != nil || *got.StorageConfiguration.S3.BucketName != "bucket-c" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	list, err := c.ListStorageConfigurations(bg, &ivsrealtime.ListStorageConfigurationsInput{MaxResults: aws.Int32(2)})
	if err != nil || len(list.StorageConfigurations) != 2 || list.NextToken == nil || *list.StorageConfigurations[0].Arn != arns[0] {
		t.Fatalf("list page = %+v, %v", list, err)
	}
	if _, err := c.DeleteStorageConfiguration(bg, &ivsrealtime.DeleteStorageConfigurationInput{Arn: aws.String(arns[0])}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("again")}}); err != nil {
		t.Errorf("create after delete freed the quota: %v", err)
	}
}

func TestIngestConfigurationLifecycle(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	st, _ := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	// Plain RTMP needs insecureIngest.
	_, err := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmp})
	var ve *types.ValidationException
	if !errors.As(err, &ve) || !strings.Contains(*ve.ExceptionMessage, "insecureIngest") {
		t.Errorf("RTMP without insecureIngest: %v", err)
	}
	out, err := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{
		IngestProtocol: types.IngestProtocolRtmps, StageArn: st.Stage.Arn, UserId: aws.String("obs"),
		Attributes: map[string]string{"role": "host"}, Name: aws.String("studio"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ic := out.IngestConfiguration
	if ic.State != types.IngestConfigurationStateInactive || *ic.StageArn != *st.Stage.Arn || len(*ic.ParticipantId) != 12 ||
		!strings.HasPrefix(*ic.StreamKey, "rt_123456789012_us-east-1_") {
		t.Errorf("ingest configuration = %+v", ic)
	}
	plain, err := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmp, InsecureIngest: true})
	if err != nil || *plain.IngestConfiguration.StageArn != "" {
		t.Fatalf("detached RTMP configuration: %+v %v", plain, err)
	}
	// Filters: by stage, by state; not both.
	byStage, err := c.ListIngestConfigurations(bg, &ivsrealtime.ListIngestConfigurationsInput{FilterByStageArn: st.Stage.Arn})
	if err != nil || len(byStage.IngestConfigurations) != 1 || *byStage.IngestConfigurations[0].Arn != *ic.Arn {
		t.Errorf("filterByStageArn = %+v, %v", byStage, err)
	}
	byState, err := c.ListIngestConfigurations(bg, &ivsrealtime.ListIngestConfigurationsInput{FilterByState: types.IngestConfigurationStateInactive})
	if err != nil || len(byState.IngestConfigurations) != 2 {
		t.Errorf("filterByState = %+v, %v", byState, err)
	}
	_, err = c.ListIngestConfigurations(bg, &ivsrealtime.ListIngestConfigurationsInput{FilterByStageArn: st.Stage.Arn, FilterByState: types.IngestConfigurationStateActive})
	if code := apiErrorCode(t, err); code != "ValidationException" {
		t.Errorf("two filters: %s", code)
	}
	// Update moves it to another stage.
	st2, _ := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	up, err := c.UpdateIngestConfiguration(bg, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: st2.Stage.Arn})
	if err != nil || *up.IngestConfiguration.StageArn != *st2.Stage.Arn || *up.IngestConfiguration.StreamKey != *ic.StreamKey {
		t.Fatalf("update = %+v, %v", up, err)
	}
	_, err = c.UpdateIngestConfiguration(bg, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: aws.String("arn:aws:ivs:us-east-1:123456789012:stage/missingStage")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("update to a missing stage: %v", err)
	}
	// Deleting the stage detaches the configuration, as IVS does.
	if _, err := c.DeleteStage(bg, &ivsrealtime.DeleteStageInput{Arn: st2.Stage.Arn}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetIngestConfiguration(bg, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.Arn})
	if err != nil || *got.IngestConfiguration.StageArn != "" {
		t.Errorf("after stage delete: %+v, %v", got, err)
	}
	if _, err := c.DeleteIngestConfiguration(bg, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetIngestConfiguration(bg, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.Arn})
	if !errors.As(err, &nf) {
		t.Errorf("get deleted: %v", err)
	}
}

func pemPublicKey(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestPublicKeyLifecycle(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	material := pemPublicKey(t, &k.PublicKey)
	out, err := c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(material), Name: aws.String("signer")})
	if err != nil {
		t.Fatal(err)
	}
	pk := out.PublicKey
	if !strings.Contains(*pk.Arn, ":public-key/") || *pk.PublicKeyMaterial != material || *pk.Fingerprint == "" {
		t.Errorf("public key = %+v", pk)
	}
	// The same key twice conflicts.
	_, err = c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(material)})
	var ce *types.ConflictException
	if !errors.As(err, &ce) {
		t.Errorf("duplicate import: %v", err)
	}
	// Keys that are not ECDSA P-384 are refused with a reason.
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, m := range map[string]string{"RSA": pemPublicKey(t, &rk.PublicKey), "P-256": pemPublicKey(t, &p256.PublicKey)} {
		_, err := c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(m)})
		var ve *types.ValidationException
		if !errors.As(err, &ve) || !strings.Contains(*ve.ExceptionMessage, "publicKeyMaterial") {
			t.Errorf("%s key: %v", name, err)
		}
	}
	// Quota: 3 per account, not adjustable in IVS.
	for i := 0; i < 2; i++ {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if _, err := c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(pemPublicKey(t, &k.PublicKey))}); err != nil {
			t.Fatal(err)
		}
	}
	k4, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, err = c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(pemPublicKey(t, &k4.PublicKey))})
	var qe *types.ServiceQuotaExceededException
	if !errors.As(err, &qe) {
		t.Errorf("fourth key: %v", err)
	}
	var all []types.PublicKeySummary
	p := ivsrealtime.NewListPublicKeysPaginator(c, &ivsrealtime.ListPublicKeysInput{MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.PublicKeys...)
	}
	if len(all) != 3 {
		t.Errorf("listed %d keys, want 3", len(all))
	}
	got, err := c.GetPublicKey(bg, &ivsrealtime.GetPublicKeyInput{Arn: pk.Arn})
	if err != nil || *got.PublicKey.Fingerprint != *pk.Fingerprint {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if _, err := c.DeletePublicKey(bg, &ivsrealtime.DeletePublicKeyInput{Arn: pk.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetPublicKey(bg, &ivsrealtime.GetPublicKeyInput{Arn: pk.Arn})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("get deleted: %v", err)
	}
}

// TestTagsOnEveryResourceType tags, lists and untags each taggable kind
// through /tags/{resourceArn}, whose ARN the SDK escapes completely.
func TestTagsOnEveryResourceType(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	st, _ := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Tags: map[string]string{"created": "yes"}})
	ec, _ := c.CreateEncoderConfiguration(bg, &ivsrealtime.CreateEncoderConfigurationInput{Tags: map[string]string{"created": "yes"}})
	sc, _ := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("b-1")}, Tags: map[string]string{"created": "yes"}})
	ic, _ := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, Tags: map[string]string{"created": "yes"}})
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pk, _ := c.ImportPublicKey(bg, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(pemPublicKey(t, &k.PublicKey)), Tags: map[string]string{"created": "yes"}})
	for kind, arn := range map[string]*string{
		"stage": st.Stage.Arn, "encoder-configuration": ec.EncoderConfiguration.Arn, "storage-configuration": sc.StorageConfiguration.Arn,
		"ingest-configuration": ic.IngestConfiguration.Arn, "public-key": pk.PublicKey.Arn,
	} {
		t.Run(kind, func(t *testing.T) {
			if _, err := c.TagResource(bg, &ivsrealtime.TagResourceInput{ResourceArn: arn, Tags: map[string]string{"env": "prod", "owner": "me"}}); err != nil {
				t.Fatal(err)
			}
			got, err := c.ListTagsForResource(bg, &ivsrealtime.ListTagsForResourceInput{ResourceArn: arn})
			if err != nil || len(got.Tags) != 3 || got.Tags["env"] != "prod" || got.Tags["created"] != "yes" {
				t.Fatalf("after tag: %v %v", got.Tags, err)
			}
			if _, err := c.UntagResource(bg, &ivsrealtime.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"env", "created"}}); err != nil {
				t.Fatal(err)
			}
			got, _ = c.ListTagsForResource(bg, &ivsrealtime.ListTagsForResourceInput{ResourceArn: arn})
			if len(got.Tags) != 1 || got.Tags["owner"] != "me" {
				t.Errorf("after untag: %v", got.Tags)
			}
		})
	}
	// Tags show in the resource itself.
	g, _ := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: st.Stage.Arn})
	if g.Stage.Tags["owner"] != "me" {
		t.Errorf("GetStage tags = %v", g.Stage.Tags)
	}
	// At most 50 tags on a resource, counting those it has.
	many := map[string]string{}
	for i := 0; i < 50; i++ {
		many["k"+strings.Repeat("x", i)] = "v"
	}
	_, err := c.TagResource(bg, &ivsrealtime.TagResourceInput{ResourceArn: st.Stage.Arn, Tags: many})
	var ve *types.ValidationException
	if !errors.As(err, &ve) || !strings.Contains(*ve.ExceptionMessage, "tags") {
		t.Errorf("51st tag: %v", err)
	}
	// A missing resource is ResourceNotFoundException.
	_, err = c.TagResource(bg, &ivsrealtime.TagResourceInput{ResourceArn: aws.String(*st.Stage.Arn + "x"), Tags: map[string]string{"a": "b"}})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("tag missing resource: %v", err)
	}
}
