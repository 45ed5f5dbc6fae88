package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/logging"
)

const (
	testAKID    = "AKIDROSTRUMTEST00001"
	testSecret  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testAccount = "123456789012"
	testRegion  = "us-east-1"
	testService = "ivs"

	// escapedARN is how the ivsrealtime client puts a stage ARN in the
	// /tags/{resourceArn} label: fully escaped, '/' included.
	escapedARN = "arn%3Aaws%3Aivs%3Aus-east-1%3A123456789012%3Astage%2FabcDEF123456"
)

var (
	testNow  = time.Date(2024, 1, 1, 0, 30, 0, 0, time.UTC)
	testCred = Credential{AccessKeyID: testAKID, SecretAccessKey: testSecret, AccountID: testAccount}
)

func newVerifier() *Verifier {
	return &Verifier{
		Service: testService,
		Region:  testRegion,
		Credentials: []Credential{
			{AccessKeyID: "AKIDOTHER", SecretAccessKey: "other", AccountID: "999999999999"},
			testCred,
		},
		Now: func() time.Time { return testNow },
	}
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signOpts describes how a test request is signed.
type signOpts struct {
	akid, secret, token string
	region, service     string
	at                  time.Time
	payloadHash         string // "" = sha256(body)
	logTo               *string
}

func defaultSign() signOpts {
	return signOpts{akid: testAKID, secret: testSecret, region: testRegion, service: testService, at: testNow}
}

// sign signs r the way the aws-sdk-go-v2 clients do.
func sign(t testing.TB, r *http.Request, body []byte, o signOpts) {
	t.Helper()
	ph := o.payloadHash
	if ph == "" {
		ph = hashHex(body)
	}
	creds := aws.Credentials{AccessKeyID: o.akid, SecretAccessKey: o.secret, SessionToken: o.token}
	err := v4.NewSigner().SignHTTP(context.Background(), creds, r, ph, o.service, o.region, o.at, func(so *v4.SignerOptions) {
		if o.logTo != nil {
			so.LogSigning = true
			so.Logger = logging.LoggerFunc(func(_ logging.Classification, format string, v ...interface{}) {
				*o.logTo = fmt.Sprintf(format, v...)
			})
		}
	})
	if err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
}

// sdkCanonical extracts the canonical request from the signer's debug log.
func sdkCanonical(t testing.TB, log string) string {
	t.Helper()
	const start = "---[ CANONICAL STRING  ]-----------------------------\n"
	const end = "\n---[ STRING TO SIGN ]"
	i, j := strings.Index(log, start), strings.Index(log, end)
	if i < 0 || j < i {
		t.Fatalf("unexpected signer log: %q", log)
	}
	return log[i+len(start) : j]
}

// received is what the test server saw and answered.
type received struct {
	principal Principal
	err       error
	canonical string // our canonical request (first candidate)
	host      string
	rawPath   string
}

// server runs Verify inside a real net/http server, so requests are checked
// exactly as Rostrum will receive them.
type server struct {
	*httptest.Server
	v    *Verifier
	mu   sync.Mutex
	last received
}

func newServer(t testing.TB, v *Verifier) *server {
	s := &server{v: v}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		p, verr := s.v.Verify(r, body)
		rec := received{principal: p, err: verr, canonical: ourCanonical(r, body), host: r.Host, rawPath: r.URL.EscapedPath()}
		s.mu.Lock()
		s.last = rec
		s.mu.Unlock()
		if verr != nil {
			writeAWSError(w, verr)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	}))
	t.Cleanup(s.Close)
	return s
}

// writeAWSError answers the way a restJson1 AWS service does.
func writeAWSError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	w.WriteHeader(e.Status)
	fmt.Fprintf(w, `{"message":%q}`, e.Message)
}

// ourCanonical recomputes the verifier's first canonical request candidate
// for the header-signed request r, for comparison with the SDK's.
func ourCanonical(r *http.Request, body []byte) string {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil || a.SignedHeaders == "" {
		return ""
	}
	path, q := wireTarget(r)
	ph := r.Header.Get(hdrContentSHA)
	if ph == "" {
		ph = hashHex(body)
	}
	return canonicalRequest(r.Method, canonicalURIs(path)[0], canonicalQuery(splitQuery(q, true), false),
		canonicalHeaders(r, strings.Split(a.SignedHeaders, ";")), a.SignedHeaders, ph)
}

func (s *server) do(t testing.TB, r *http.Request) received {
	t.Helper()
	resp, err := s.Client().Do(r)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func newReq(t testing.TB, method, url string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type reqCase struct {
	name, method, path string
	body               []byte
	headers            map[string]string
}

var acceptCases = []reqCase{
	{name: "CreateStage", method: "POST", path: "/CreateStage",
		body:    []byte(`{"name":"my-stage","participantTokenConfigurations":[{"userId":"u1","capabilities":["PUBLISH","SUBSCRIBE"]}],"tags":{"env":"dev"}}`),
		headers: map[string]string{"Content-Type": "application/json"}},
	{name: "ListTagsForResource", method: "GET", path: "/tags/" + escapedARN},
	{name: "UntagResource", method: "DELETE", path: "/tags/" + escapedARN + "?tagKeys=a&tagKeys=b"},
	{name: "TagResource", method: "POST", path: "/tags/" + escapedARN, body: []byte(`{"tags":{"a":"1"}}`),
		headers: map[string]string{"Content-Type": "application/json"}},
	{name: "QueryNeedsEncoding", method: "GET", path: "/ListStages?nextToken=a%2Fb%2Bc%3D%3D&maxResults=10&z=%20sp&e=&%C3%A9t%C3%A9=%E2%9C%93"},
	{name: "QuerySortAfterEncoding", method: "GET", path: "/x?k=a-b&k=a%2Fb&k=a.b"},
	{name: "PathNeedsEncoding", method: "GET", path: "/tags/a:b$c!d@e'f(g)*h,i;j=k+l"},
	{name: "RepeatedAndSpacedHeaders", method: "POST", path: "/CreateStage", body: []byte(`{}`),
		headers: map[string]string{"Content-Type": "application/json", "X-Amz-Meta-Odd": "  a   b  c  "}},
	{name: "EmptyBodyPost", method: "POST", path: "/ListStages", body: []byte{}},
}

func TestVerifyAcceptsSDKSignedRequests(t *testing.T) {
	s := newServer(t, newVerifier())
	for _, c := range acceptCases {
		t.Run(c.name, func(t *testing.T) {
			r := newReq(t, c.method, s.URL+c.path, c.body)
			for k, v := range c.headers {
				r.Header.Set(k, v)
			}
			if c.name == "RepeatedAndSpacedHeaders" {
				r.Header.Add("X-Amz-Meta-Odd", "second")
			}
			var log string
			o := defaultSign()
			o.logTo = &log
			sign(t, r, c.body, o)
			got := s.do(t, r)
			if got.err != nil {
				t.Fatalf("Verify: %v\nSDK canonical:\n%s\nours:\n%s", got.err, sdkCanonical(t, log), got.canonical)
			}
			if got.principal != (Principal{AccessKeyID: testAKID, AccountID: testAccount}) {
				t.Fatalf("principal = %+v", got.principal)
			}
			if want := sdkCanonical(t, log); got.canonical != want {
				t.Fatalf("canonical request differs from the SDK's\nSDK:\n%s\nours:\n%s", want, got.canonical)
			}
		})
	}
}

// The SDK escapes the already-escaped path again when signing, and a server
// has to do the same to the path it received.
func TestEscapedARNIsDoubleEncoded(t *testing.T) {
	s := newServer(t, newVerifier())
	r := newReq(t, "GET", s.URL+"/tags/"+escapedARN, nil)
	var log string
	o := defaultSign()
	o.logTo = &log
	sign(t, r, nil, o)
	got := s.do(t, r)
	if got.err != nil {
		t.Fatal(got.err)
	}
	if got.rawPath != "/tags/"+escapedARN {
		t.Fatalf("server saw path %q, want the escaped ARN as sent", got.rawPath)
	}
	wantURI := "/tags/arn%253Aaws%253Aivs%253Aus-east-1%253A123456789012%253Astage%252FabcDEF123456"
	if line := strings.Split(sdkCanonical(t, log), "\n")[1]; line != wantURI {
		t.Fatalf("SDK canonical URI = %q, want %q", line, wantURI)
	}
	if line := strings.Split(got.canonical, "\n")[1]; line != wantURI {
		t.Fatalf("our canonical URI = %q, want %q", line, wantURI)
	}
}

func TestSessionTokenAndContentSHA(t *testing.T) {
	v := newVerifier()
	v.Credentials = append(v.Credentials, Credential{AccessKeyID: "ASIATEMP", SecretAccessKey: "tmpsecret", AccountID: "222222222222", SessionToken: "tok/en+=="})
	s := newServer(t, v)
	body := []byte(`{"name":"s"}`)

	// Token signed as a header, and required by the credential.
	r := newReq(t, "POST", s.URL+"/CreateStage", body)
	o := defaultSign()
	o.akid, o.secret, o.token = "ASIATEMP", "tmpsecret", "tok/en+=="
	sign(t, r, body, o)
	if r.Header.Get(hdrSecToken) == "" {
		t.Fatal("signer did not add X-Amz-Security-Token")
	}
	if got := s.do(t, r); got.err != nil || got.principal.AccountID != "222222222222" {
		t.Fatalf("token request: %+v", got)
	}

	// Wrong token for a key that requires one.
	r = newReq(t, "POST", s.URL+"/CreateStage", body)
	o.token = "other"
	sign(t, r, body, o)
	expectErr(t, s.do(t, r).err, CodeUnrecognizedClient, "The security token included in the request is invalid.")

	// A token on a key that doesn't require one is just a signed header.
	r = newReq(t, "POST", s.URL+"/CreateStage", body)
	o = defaultSign()
	o.token = "anything"
	sign(t, r, body, o)
	if got := s.do(t, r); got.err != nil {
		t.Fatal(got.err)
	}

	// X-Amz-Content-Sha256 signed as a header.
	r = newReq(t, "POST", s.URL+"/CreateStage", body)
	r.Header.Set(hdrContentSHA, hashHex(body))
	sign(t, r, body, defaultSign())
	if got := s.do(t, r); got.err != nil {
		t.Fatal(got.err)
	}

	// UNSIGNED-PAYLOAD is S3's: this API refuses it, even correctly signed,
	// and says why.
	for _, h := range []string{unsignedPayload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER"} {
		r = newReq(t, "POST", s.URL+"/CreateStage", body)
		r.Header.Set(hdrContentSHA, h)
		o = defaultSign()
		o.payloadHash = h
		sign(t, r, body, o)
		expectErr(t, s.do(t, r).err, CodeInvalidSignature, msgUnsignedPayload)
	}
}

// TestPresignedBodyIsSigned: a presigned POST covers its body, as AWS's
// restJson1 services check it; the body of a presigned URL cannot be
// swapped, and a URL presigned with UNSIGNED-PAYLOAD (the S3 way) is
// refused with a message saying so.
func TestPresignedBodyIsSigned(t *testing.T) {
	s := newServer(t, newVerifier())
	const stageX = `{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/stageXXXXXXX","capabilities":["PUBLISH"]}`
	const stageY = `{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/stageYYYYYYY","capabilities":["PUBLISH"]}`
	presign := func(body, payloadHash string) string {
		r := newReq(t, "POST", s.URL+"/CreateParticipantToken", []byte(body))
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(),
			aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret},
			r, payloadHash, testService, testRegion, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	post := func(u, body string) received { return s.do(t, newReq(t, "POST", u, []byte(body))) }
	if len(stageX) != len(stageY) {
		t.Fatal("the swapped body must keep the signed Content-Length")
	}

	// What SDKs do for non-S3 services: the body's hash.
	u := presign(stageX, hashHex([]byte(stageX)))
	if got := post(u, stageX); got.err != nil {
		t.Fatalf("presigned with the body's hash: %v", got.err)
	}
	expectErr(t, post(u, stageY).err, CodeInvalidSignature, msgSignatureMismatch)
	expectErr(t, post(u, "").err, CodeInvalidSignature, msgSignatureMismatch)

	u = presign(stageX, unsignedPayload)
	expectErr(t, post(u, stageX).err, CodeInvalidSignature, msgUnsignedPayload)
	expectErr(t, post(u, stageY).err, CodeInvalidSignature, msgUnsignedPayload)

	// The header cannot reopen the door on a presigned URL either.
	r := newReq(t, "POST", u, []byte(stageY))
	r.Header.Set(hdrContentSHA, unsignedPayload)
	expectErr(t, s.do(t, r).err, CodeInvalidSignature, msgUnsignedPayload)
}

func TestPresignedURL(t *testing.T) {
	s := newServer(t, newVerifier())
	presign := func(at time.Time, expires string) string {
		u := s.URL + "/tags/" + escapedARN
		if expires != "" {
			u += "?X-Amz-Expires=" + expires
		}
		r := newReq(t, "GET", u, nil)
		signed, _, err := v4.NewSigner().PresignHTTP(context.Background(),
			aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: "tok"},
			r, hashHex(nil), testService, testRegion, at)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	get := func(u string) received { return s.do(t, newReq(t, "GET", u, nil)) }

	if got := get(presign(testNow.Add(-5*time.Minute), "600")); got.err != nil {
		t.Fatalf("presigned: %v", got.err)
	}
	if got := get(presign(testNow.Add(-5*time.Minute), "")); got.err != nil {
		t.Fatalf("presigned without X-Amz-Expires: %v", got.err)
	}
	expectErr(t, get(presign(testNow.Add(-11*time.Minute), "600")).err, CodeInvalidSignature,
		"Signature expired: 20240101T001900Z is now earlier than 20240101T002000Z (20240101T003000Z - 10 min.)")
	expectErr(t, get(presign(testNow, "700000")).err, CodeIncompleteSignature,
		"X-Amz-Expires must be less than a week (in seconds) that is 604800.")

	u := presign(testNow, "600")
	expectErr(t, get(strings.Replace(u, "tags/arn", "tags/xarn", 1)).err, CodeInvalidSignature, msgSignatureMismatch)
	expectErr(t, get(u+"&extra=1").err, CodeInvalidSignature, msgSignatureMismatch)

	// Header and query auth at once.
	r := newReq(t, "GET", u, nil)
	sign(t, r, nil, defaultSign())
	expectErr(t, s.do(t, r).err, CodeIncompleteSignature, "")

	// Missing query parameters are all named.
	pu, _ := url.Parse(u)
	q := pu.Query()
	q.Del("X-Amz-Signature")
	q.Del("X-Amz-Credential")
	pu.RawQuery = q.Encode()
	expectErr(t, get(pu.String()).err, CodeIncompleteSignature,
		"AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters.")
}

func expectErr(t testing.TB, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify accepted the request; want %s", code)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not *Error", err, err)
	}
	if e.Code != code || e.Status != http.StatusForbidden {
		t.Fatalf("got %s (%d) %q; want %s (403)", e.Code, e.Status, e.Message, code)
	}
	if msg != "" && e.Message != msg {
		t.Fatalf("message = %q\nwant      %q", e.Message, msg)
	}
}

func TestVerifyErrors(t *testing.T) {
	body := []byte(`{"name":"my-stage"}`)
	const ctype = "application/json"

	type errCase struct {
		name    string
		sign    func(*signOpts)
		mutate  func(r *http.Request)
		code    string
		msg     string // exact; "" = don't check
		msgPart string // substring
	}
	replaceAuth := func(old, new string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
		}
	}
	cases := []errCase{
		{name: "tampered body", mutate: func(r *http.Request) {
			b := bytes.Replace(body, []byte("my-stage"), []byte("my-stagX"), 1)
			r.Body, r.ContentLength, r.GetBody = io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
		}, code: CodeInvalidSignature, msg: msgSignatureMismatch},
		{name: "tampered body with signed content sha", sign: func(o *signOpts) { o.payloadHash = "" }, mutate: func(r *http.Request) {
			b := bytes.Replace(body, []byte("my-stage"), []byte("my-stagX"), 1)
			r.Body, r.ContentLength, r.GetBody = io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
		}, code: CodeInvalidSignature, msgPart: "payload hash does not match"},
		{name: "tampered signed header", mutate: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") },
			code: CodeInvalidSignature, msg: msgSignatureMismatch},
		{name: "tampered path", mutate: func(r *http.Request) { r.URL.Path = "/DeleteStage" },
			code: CodeInvalidSignature, msg: msgSignatureMismatch},
		{name: "tampered query", mutate: func(r *http.Request) { r.URL.RawQuery = "x=1" },
			code: CodeInvalidSignature, msg: msgSignatureMismatch},
		{name: "tampered method", mutate: func(r *http.Request) { r.Method = "PUT" },
			code: CodeInvalidSignature, msg: msgSignatureMismatch},
		{name: "tampered signature", mutate: replaceAuth("Signature=", "Signature=0"),
			code: CodeInvalidSignature, msg: msgSignatureMismatch},
		{name: "wrong secret", sign: func(o *signOpts) { o.secret = "not-the-secret" },
			code: CodeInvalidSignature, msg: msgSignatureMismatch},
		{name: "unknown key", sign: func(o *signOpts) { o.akid = "AKIDNOBODY" },
			code: CodeUnrecognizedClient, msg: "The security token included in the request is invalid."},
		{name: "wrong region", sign: func(o *signOpts) { o.region = "eu-west-1" },
			code: CodeInvalidSignature, msg: "Credential should be scoped to a valid region. "},
		{name: "wrong service", sign: func(o *signOpts) { o.service = "s3" },
			code: CodeInvalidSignature, msg: "Credential should be scoped to correct service: 'ivs'. "},
		{name: "expired", sign: func(o *signOpts) { o.at = testNow.Add(-30 * time.Minute) },
			code: CodeInvalidSignature, msg: "Signature expired: 20240101T000000Z is now earlier than 20240101T001500Z (20240101T003000Z - 15 min.)"},
		{name: "not yet current", sign: func(o *signOpts) { o.at = testNow.Add(30 * time.Minute) },
			code: CodeInvalidSignature, msg: "Signature not yet current: 20240101T010000Z is still later than 20240101T004500Z (20240101T003000Z + 15 min.)"},
		{name: "scope date differs from X-Amz-Date", mutate: replaceAuth("/20240101/", "/20231231/"),
			code: CodeInvalidSignature, msg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20231231' != '20240101', from '20240101T003000Z'."},
		{name: "missing authorization", mutate: func(r *http.Request) { r.Header.Del("Authorization") },
			code: CodeMissingAuthenticationToken, msg: "Missing Authentication Token"},
		{name: "garbage authorization", mutate: func(r *http.Request) { r.Header.Set("Authorization", "Bearer eyJhbGciOi") },
			code: CodeIncompleteSignature, msgPart: "Unsupported AWS 'algorithm': 'Bearer'"},
		{name: "missing signature param", mutate: func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAKID+"/20240101/us-east-1/ivs/aws4_request, SignedHeaders=host;x-amz-date")
		}, code: CodeIncompleteSignature, msg: "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=" + testAKID + "/20240101/us-east-1/ivs/aws4_request, SignedHeaders=host;x-amz-date"},
		{name: "algorithm only, no date", mutate: func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256")
			r.Header.Del("X-Amz-Date")
		}, code: CodeIncompleteSignature, msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
			"Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"},
		{name: "missing x-amz-date", mutate: func(r *http.Request) { r.Header.Del("X-Amz-Date") },
			code: CodeIncompleteSignature, msgPart: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."},
		{name: "bad x-amz-date", mutate: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2024-01-01T00:30:00Z") },
			code: CodeIncompleteSignature, msg: "Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:30:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "space in credential", mutate: replaceAuth(testAKID+"/", testAKID+" /"),
			code: CodeIncompleteSignature, msgPart: "'/20240101/us-east-1/ivs/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header"},
		{name: "credential with 4 elements", mutate: replaceAuth("/us-east-1/", "/"),
			code: CodeIncompleteSignature, msg: "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '" + testAKID + "/20240101/ivs/aws4_request'"},
		{name: "bad terminator", mutate: replaceAuth("aws4_request", "aws5_request"),
			code: CodeIncompleteSignature, msg: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "},
		{name: "host not signed", mutate: replaceAuth("SignedHeaders=content-length;content-type;host;", "SignedHeaders=content-length;content-type;"),
			code: CodeIncompleteSignature, msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "duplicate parameter", mutate: func(r *http.Request) {
			r.Header.Set("Authorization", r.Header.Get("Authorization")+", Signature=00")
		}, code: CodeIncompleteSignature, msgPart: "more than one 'Signature'"},
		{name: "wrong host", mutate: func(r *http.Request) { r.Host = "ivsrealtime.us-east-1.amazonaws.com" },
			code: CodeInvalidSignature, msg: msgSignatureMismatch},
	}

	s := newServer(t, newVerifier())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newReq(t, "POST", s.URL+"/CreateStage", body)
			r.Header.Set("Content-Type", ctype)
			o := defaultSign()
			if c.sign != nil {
				c.sign(&o)
			}
			if c.name == "tampered body with signed content sha" {
				r.Header.Set(hdrContentSHA, hashHex(body))
			}
			sign(t, r, body, o)
			if c.mutate != nil {
				c.mutate(r)
			}
			got := s.do(t, r)
			expectErr(t, got.err, c.code, c.msg)
			if c.msgPart != "" && !strings.Contains(got.err.(*Error).Message, c.msgPart) {
				t.Fatalf("message %q does not contain %q", got.err.(*Error).Message, c.msgPart)
			}
		})
	}
}

func TestSkewBoundaries(t *testing.T) {
	s := newServer(t, newVerifier())
	for _, c := range []struct {
		off time.Duration
		ok  bool
	}{
		{-15 * time.Minute, true}, {-15*time.Minute - time.Second, false},
		{15 * time.Minute, true}, {15*time.Minute + time.Second, false},
		{-14 * time.Minute, true}, {0, true},
	} {
		r := newReq(t, "GET", s.URL+"/tags/"+escapedARN, nil)
		o := defaultSign()
		o.at = testNow.Add(c.off)
		sign(t, r, nil, o)
		if got := s.do(t, r); (got.err == nil) != c.ok {
			t.Errorf("offset %v: err = %v, want ok=%v", c.off, got.err, c.ok)
		}
	}

	v := newVerifier()
	v.MaxSkew = 5 * time.Minute
	s = newServer(t, v)
	r := newReq(t, "GET", s.URL+"/x", nil)
	o := defaultSign()
	o.at = testNow.Add(-6 * time.Minute)
	sign(t, r, nil, o)
	expectErr(t, s.do(t, r).err, CodeInvalidSignature,
		"Signature expired: 20240101T002400Z is now earlier than 20240101T002500Z (20240101T003000Z - 5 min.)")
}

// A Date header stands in for X-Amz-Date (older clients, hand-signed requests).
func TestDateHeaderInsteadOfXAmzDate(t *testing.T) {
	v := newVerifier()
	r := httptest.NewRequest("GET", "http://rostrum.local/ListStages?maxResults=5", nil)
	r.Header.Set("Date", testNow.Format(http.TimeFormat))
	sc := scope{testAKID, "20240101", testRegion, testService, "aws4_request"}
	creq := canonicalRequest("GET", "/ListStages", "maxResults=5", "date:"+testNow.Format(http.TimeFormat)+"\nhost:rostrum.local\n", "date;host", hashHex(nil))
	sig := signature(signingKey(testSecret, sc), stringToSign("20240101T003000Z", sc, creq))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAKID+"/"+sc.String()+", SignedHeaders=date;host, Signature="+string(sig))
	if _, err := v.Verify(r, nil); err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Date", testNow.Add(time.Second).Format(http.TimeFormat))
	expectErr(t, func() error { _, err := v.Verify(r, nil); return err }(), CodeInvalidSignature, msgSignatureMismatch)
}

// botocore and the JavaScript SDK sign the dot-segment-normalised path; the
// Go SDK signs it as sent. Both must verify, and neither may verify a
// different path.
func TestNormalisedPathSignature(t *testing.T) {
	v := newVerifier()
	sc := scope{testAKID, "20240101", testRegion, testService, "aws4_request"}
	signAs := func(r *http.Request, canonURI string) {
		r.Header.Set("X-Amz-Date", "20240101T003000Z")
		creq := canonicalRequest(r.Method, canonURI, "", "host:"+r.Host+"\nx-amz-date:20240101T003000Z\n", "host;x-amz-date", hashHex(nil))
		sig := signature(signingKey(testSecret, sc), stringToSign("20240101T003000Z", sc, creq))
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAKID+"/"+sc.String()+", SignedHeaders=host;x-amz-date, Signature="+string(sig))
	}
	r := httptest.NewRequest("GET", "http://h/a//b/./c/../tags/x%3Ay", nil)
	signAs(r, "/a/b/tags/x%253Ay")
	if _, err := v.Verify(r, nil); err != nil {
		t.Fatalf("normalised signature: %v", err)
	}
	r = httptest.NewRequest("GET", "http://h/a//b/./c/../tags/x%3Ay", nil)
	signAs(r, "/a//b/./c/../tags/x%253Ay")
	if _, err := v.Verify(r, nil); err != nil {
		t.Fatalf("raw signature: %v", err)
	}
	r = httptest.NewRequest("GET", "http://h/a/b/tags/x%3Az", nil)
	signAs(r, "/a/b/tags/x%253Ay")
	if _, err := v.Verify(r, nil); err == nil {
		t.Fatal("signature for another path accepted")
	}
}

func TestLookupFunc(t *testing.T) {
	calls := 0
	v := &Verifier{Service: testService, Region: testRegion, Now: func() time.Time { return testNow },
		Lookup: func(id string) (Credential, bool) {
			calls++
			return testCred, id == testAKID
		}}
	r := httptest.NewRequest("GET", "http://rostrum.local/tags/"+escapedARN+"?tagKeys=b&tagKeys=a", nil)
	sign(t, r, nil, defaultSign())
	p, err := v.Verify(r, nil)
	if err != nil || p.AccountID != testAccount || calls != 1 {
		t.Fatalf("p=%+v err=%v calls=%d", p, err, calls)
	}
}

func TestUnitCanonicalPieces(t *testing.T) {
	if got := uriEncode("a b/c~d%e+é", false); got != "a%20b%2Fc~d%25e%2B%C3%A9" {
		t.Errorf("uriEncode query = %q", got)
	}
	if got := uriEncode("/a b/c", true); got != "/a%20b/c" {
		t.Errorf("uriEncode path = %q", got)
	}
	for in, want := range map[string]string{
		"": "/", "/": "/", "/a/b": "/a/b", "/a//b/": "/a/b/", "/a/./b/../c": "/a/c", "/../..": "/", "/a/..": "/", "//": "/",
	} {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
	// Sorted after encoding: '%' (0x25) < '-' (0x2D) < '.' (0x2E).
	if got := canonicalQuery(splitQuery("k=a-b&k=a%2Fb&k=a.b&b&a=1&a=", true), false); got != "a=&a=1&b=&k=a%2Fb&k=a-b&k=a.b" {
		t.Errorf("canonicalQuery = %q", got)
	}
	if got := canonicalQuery(splitQuery("X-Amz-Signature=abc&a=%zz", true), true); got != "a=%25zz" {
		t.Errorf("canonicalQuery skip signature / bad escape = %q", got)
	}
	if got := canonicalHeaderValue([]string{"  a   b  ", "c\td", ""}); got != "a b,c\td," {
		t.Errorf("canonicalHeaderValue = %q", got)
	}
}

func TestErrorInterface(t *testing.T) {
	var err error = errInvalid(msgSignatureMismatch)
	if !strings.HasPrefix(err.Error(), CodeInvalidSignature+": ") {
		t.Fatal(err.Error())
	}
	v := newVerifier()
	_, err = v.Verify(httptest.NewRequest("GET", "/", nil), nil)
	var e *Error
	if !errors.As(err, &e) || e.ErrorCode() != CodeMissingAuthenticationToken || e.HTTPStatusCode() != 403 || e.ErrorMessage() != "Missing Authentication Token" {
		t.Fatalf("%#v", err)
	}
	// A successful Verify returns a nil interface, not a typed nil.
	r := httptest.NewRequest("GET", "http://rostrum.local/", nil)
	sign(t, r, nil, defaultSign())
	if _, err := v.Verify(r, nil); err != nil {
		t.Fatalf("err = %#v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	v := newVerifier()
	body := []byte(`{"name":"my-stage","participantTokenConfigurations":[{"userId":"u1","capabilities":["PUBLISH","SUBSCRIBE"]}]}`)
	r := httptest.NewRequest("POST", "http://rostrum.local:8080/CreateStage", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	sign(b, r, body, defaultSign())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

// httptest.NewRequest (like a request a handler builds itself) carries its
// length in ContentLength only, with no Content-Length header; the SDK signs
// content-length whenever the body is non-empty.
func TestContentLengthFromField(t *testing.T) {
	body := []byte(`{"name":"s"}`)
	r := httptest.NewRequest("POST", "http://rostrum.local:8080/CreateStage", bytes.NewReader(body))
	sign(t, r, body, defaultSign())
	if !strings.Contains(r.Header.Get("Authorization"), "SignedHeaders=content-length;host;") {
		t.Fatalf("content-length not signed: %s", r.Header.Get("Authorization"))
	}
	if r.Header.Get("Content-Length") != "" {
		t.Fatal("unexpected Content-Length header")
	}
	if _, err := newVerifier().Verify(r, body); err != nil {
		t.Fatal(err)
	}
	r.ContentLength++
	expectErr(t, func() error { _, err := newVerifier().Verify(r, body); return err }(), CodeInvalidSignature, msgSignatureMismatch)
}
