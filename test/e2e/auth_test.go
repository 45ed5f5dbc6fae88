package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/rostrum-dev/rostrum/internal/token"
)

func TestSigV4ErrorsAreWhatAWSClientsExpect(t *testing.T) {
	ts := startServer(t, "")
	// Wrong secret: InvalidSignatureException.
	_, err := ts.clientWith(ts.cfg.AccessKeyID, "not-the-secret").ListStages(bg, &ivsrealtime.ListStagesInput{})
	if code := apiErrorCode(t, err); code != "InvalidSignatureException" {
		t.Errorf("wrong secret: %s", code)
	}
	// Unknown access key: UnrecognizedClientException.
	_, err = ts.clientWith("AKIAUNKNOWN000000000", "whatever").ListStages(bg, &ivsrealtime.ListStagesInput{})
	if code := apiErrorCode(t, err); code != "UnrecognizedClientException" {
		t.Errorf("unknown key: %s", code)
	}
	// Another region in the credential scope.
	other := ivsrealtime.NewFromConfig(ts.awsConfig(ts.cfg.AccessKeyID, ts.cfg.SecretAccessKey), func(o *ivsrealtime.Options) {
		o.BaseEndpoint = aws.String(ts.BaseURL)
		o.Region = "eu-west-1"
	})
	_, err = other.ListStages(bg, &ivsrealtime.ListStagesInput{})
	if code := apiErrorCode(t, err); code != "InvalidSignatureException" {
		t.Errorf("wrong region: %s", code)
	}
	// Unsigned: 403 MissingAuthenticationTokenException, never a 500.
	resp, err := http.Post(ts.BaseURL+"/ListStages", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" || resp.Header.Get("x-amzn-RequestId") == "" {
		t.Errorf("unsigned: %d %v", resp.StatusCode, resp.Header)
	}
	// Garbage Authorization header: 403, not 500.
	req, _ := http.NewRequest("POST", ts.BaseURL+"/ListStages", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 garbage")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("garbage Authorization: %d", resp.StatusCode)
	}
}

func TestErrorsCarryExceptionMessageAndRequestID(t *testing.T) {
	ts := startServer(t, "")
	status, h, body := ts.call(t, "POST", "/GetStage", []byte(`{"arn":"arn:aws:ivs:us-east-1:123456789012:stage/nothingHere1"}`))
	if status != 404 || h.Get("x-amzn-ErrorType") != "ResourceNotFoundException" || h.Get("x-amzn-RequestId") == "" {
		t.Fatalf("%d %v", status, h)
	}
	var e map[string]string
	if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e["exceptionMessage"], "nothingHere1") {
		t.Errorf("body %s", body)
	}
	// Malformed JSON is a ValidationException, not a crash.
	for _, b := range []string{`{`, `[]`, `"x"`, `{"name": 5}`, `{} {}`} {
		status, h, body := ts.call(t, "POST", "/CreateStage", []byte(b))
		if status != 400 || h.Get("x-amzn-ErrorType") != "ValidationException" {
			t.Errorf("body %q: %d %s", b, status, body)
		}
	}
	// Unknown operation.
	status, h, _ = ts.call(t, "POST", "/DoSomethingElse", []byte(`{}`))
	if status != 404 || h.Get("x-amzn-ErrorType") != "UnknownOperationException" {
		t.Errorf("unknown operation: %d %v", status, h)
	}
	// Oversized body: 413.
	status, _, _ = ts.call(t, "POST", "/CreateStage", bytes.Repeat([]byte(" "), 2<<20))
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d", status)
	}
	// Every success carries a request id too.
	_, h, _ = ts.call(t, "POST", "/ListStages", []byte(`{}`))
	if h.Get("x-amzn-RequestId") == "" {
		t.Error("no x-amzn-RequestId on success")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	ts := startServer(t, "")
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(ts.BaseURL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

// TestPresignedRequestsSignTheirBody: a presigned CreateParticipantToken
// covers its body, as AWS's restJson1 services check it. The URL cannot be
// replayed with another body (a PUBLISH token for another stage), and
// UNSIGNED-PAYLOAD, which only S3 accepts, is refused in the header and in
// presigned URLs with a message that says so. What the SDKs do for this API
// (sign the body's SHA-256, presigned or not) keeps working.
func TestPresignedRequestsSignTheirBody(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	x, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Name: aws.String("x")})
	if err != nil {
		t.Fatal(err)
	}
	y, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Name: aws.String("y")})
	if err != nil {
		t.Fatal(err)
	}
	body := func(arn *string) []byte {
		return []byte(`{"stageArn":"` + aws.ToString(arn) + `","capabilities":["PUBLISH"]}`)
	}
	forX, forY := body(x.Stage.Arn), body(y.Stage.Arn)
	if len(forX) != len(forY) {
		t.Fatal("the swapped body must keep the signed Content-Length")
	}
	creds := aws.Credentials{AccessKeyID: ts.cfg.AccessKeyID, SecretAccessKey: ts.cfg.SecretAccessKey}
	presign := func(b []byte, payloadHash string) string {
		req, _ := http.NewRequest("POST", ts.BaseURL+"/CreateParticipantToken", bytes.NewReader(b))
		u, _, err := v4.NewSigner().PresignHTTP(bg, creds, req, payloadHash, "ivs", testRegion, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	post := func(u string, b []byte, header string) (int, string, []byte) {
		req, _ := http.NewRequest("POST", u, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set("X-Amz-Content-Sha256", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), out
	}
	hash := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

	u := presign(forX, hash(forX))
	status, _, out := post(u, forX, "")
	if status != 200 || !bytes.Contains(out, []byte(`"participantToken"`)) {
		t.Fatalf("presigned with the body's hash: %d %s", status, out)
	}
	var tok struct{ ParticipantToken struct{ Token string } }
	if err := json.Unmarshal(out, &tok); err != nil {
		t.Fatal(err)
	}
	p, err := token.Parse(tok.ParticipantToken.Token)
	if err != nil || p.Claims.Resource != aws.ToString(x.Stage.Arn) {
		t.Fatalf("token: %v %+v", err, p)
	}
	if status, code, out := post(u, forY, ""); status != 403 || code != "InvalidSignatureException" {
		t.Errorf("presigned URL replayed with another stage: %d %s %s", status, code, out)
	}

	unsigned := presign(forX, "UNSIGNED-PAYLOAD")
	for _, b := range [][]byte{forX, forY} {
		status, code, out := post(unsigned, b, "")
		if status != 403 || code != "InvalidSignatureException" || !bytes.Contains(out, []byte("unsigned payloads")) {
			t.Errorf("presigned with UNSIGNED-PAYLOAD: %d %s %s", status, code, out)
		}
	}

	// Header auth with X-Amz-Content-Sha256: UNSIGNED-PAYLOAD, signed as such.
	req, _ := http.NewRequest("POST", ts.BaseURL+"/CreateParticipantToken", bytes.NewReader(forY))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner().SignHTTP(bg, creds, req, "UNSIGNED-PAYLOAD", "ivs", testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "InvalidSignatureException" || !bytes.Contains(out, []byte("unsigned payloads")) {
		t.Errorf("header UNSIGNED-PAYLOAD: %d %s", resp.StatusCode, out)
	}
}

// botocore presigns for this API the way it does for every service but S3
// (SigV4QueryAuth: the body's hash, which for a GET is the empty body's):
// such a URL keeps working now that unsigned payloads are refused.
func TestBoto3PresignedURLWorks(t *testing.T) {
	python := needTool(t, "python3")
	if err := exec.Command(python, "-c", "import boto3").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("boto3 is needed for this test: %v", err)
		}
		t.Skip("boto3 not installed")
	}
	ts := startServer(t, "")
	st, err := ts.client().CreateStage(bg, &ivsrealtime.CreateStageInput{Tags: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	script := `
import sys, json, urllib.request, boto3
c = boto3.client("ivs-realtime", endpoint_url=sys.argv[1])
url = c.generate_presigned_url("list_tags_for_resource", Params={"resourceArn": sys.argv[2]}, ExpiresIn=300)
assert "X-Amz-Signature=" in url, url
with urllib.request.urlopen(url) as r:
    body = json.load(r)
assert body == {"tags": {"team": "a"}}, body
print("presigned ok")
`
	cmd := exec.Command(python, "-c", script, ts.BaseURL, aws.ToString(st.Stage.Arn))
	cmd.Env = devEnv()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "presigned ok") {
		t.Fatalf("boto3 presigned URL: %v\n%s", err, out)
	}
}
