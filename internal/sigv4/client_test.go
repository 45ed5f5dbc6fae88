package sigv4

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/smithy-go"
)

// TestRealIVSRealtimeClient drives the generated ivsrealtime client (the
// thing Rostrum's users actually run) against a server that only verifies
// signatures, with nothing but the endpoint overridden.
func TestRealIVSRealtimeClient(t *testing.T) {
	v := newVerifier()
	v.Now = nil // the client signs with the real clock

	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p, err := v.Verify(r, body)
		if err != nil {
			writeAWSError(w, err)
			return
		}
		mu.Lock()
		seen = append(seen, r.Method+" "+r.RequestURI+" by "+p.AccountID)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/CreateStage":
			io.WriteString(w, `{"stage":{"arn":"arn:aws:ivs:us-east-1:123456789012:stage/abcDEF123456","name":"my-stage"},"participantTokens":[]}`)
		case r.Method == "GET":
			io.WriteString(w, `{"tags":{"a":"1"}}`)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	defer srv.Close()

	client := func(akid, secret string) *ivsrealtime.Client {
		return ivsrealtime.New(ivsrealtime.Options{
			Region:           testRegion,
			BaseEndpoint:     aws.String(srv.URL),
			Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, ""),
			HTTPClient:       srv.Client(),
			RetryMaxAttempts: 1,
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := client(testAKID, testSecret)
	const arn = "arn:aws:ivs:us-east-1:123456789012:stage/abcDEF123456"

	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("my-stage"), Tags: map[string]string{"env": "dev"}})
	if err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	if aws.ToString(out.Stage.Arn) != arn {
		t.Fatalf("stage = %+v", out.Stage)
	}
	tags, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("ListTagsForResource: %v", err)
	}
	if tags.Tags["a"] != "1" {
		t.Fatalf("tags = %v", tags.Tags)
	}
	if _, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"k y": "v/w"}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if _, err := c.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"b", "a", "k y"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	mu.Lock()
	t.Logf("verified: %q", seen)
	if len(seen) != 4 || seen[1] != "GET /tags/"+escapedARN+" by "+testAccount {
		t.Fatalf("requests seen = %q", seen)
	}
	mu.Unlock()

	// The client surfaces our errors as the usual typed API errors.
	for _, tc := range []struct{ akid, secret, code, msg string }{
		{testAKID, "wrong", CodeInvalidSignature, msgSignatureMismatch},
		{"AKIDNOBODY", testSecret, CodeUnrecognizedClient, "The security token included in the request is invalid."},
	} {
		_, err := client(tc.akid, tc.secret).ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || ae.ErrorMessage() != tc.msg {
			t.Fatalf("err = %v; want %s %q", err, tc.code, tc.msg)
		}
	}
}
