package sigv4

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ivs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123abcd",
		"AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ivs/aws4_request,SignedHeaders=host,Signature=00",
		"AWS4-HMAC-SHA256\tCredential=a,\tSignature=b",
		"AWS4-HMAC-SHA256 Credential= AKID/20240101/us-east-1/ivs/aws4_request",
		"AWS4-HMAC-SHA256 Signature=a, Signature=b",
		"AWS4-HMAC-SHA256 Foo=bar, Credential=a=b=c",
		"AWS4-HMAC-SHA256",
		"  AWS4-HMAC-SHA256 ,,, ",
		"Bearer abc.def",
		"Credential=x",
		"AWS4-ECDSA-P256-SHA256 Credential=x",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			if err.Code != CodeIncompleteSignature || err.Status != http.StatusForbidden || err.Message == "" {
				t.Fatalf("bad error %#v", err)
			}
			if a != (authorization{}) {
				t.Fatalf("error with non-empty result %+v", a)
			}
			return
		}
		if a.Algorithm != algorithm {
			t.Fatalf("accepted algorithm %q", a.Algorithm)
		}
		for _, v := range []string{a.Credential, a.SignedHeaders, a.Signature} {
			if strings.ContainsAny(v, ", \t") {
				t.Fatalf("value %q contains a separator", v)
			}
		}
		// Formatting the result the way the SDKs do and parsing it again
		// must give the same result.
		b, err := parseAuthorization(a.String())
		if err != nil || b != a {
			t.Fatalf("round trip: %+v -> %q -> %+v, %v", a, a.String(), b, err)
		}
		if a.Credential != "" {
			if sc, err := parseCredential(a.Credential); err == nil {
				if sc.AccessKeyID+"/"+sc.String() != a.Credential {
					t.Fatalf("credential round trip %q -> %+v", a.Credential, sc)
				}
			}
		}
	})
}

// fuzzRequest builds a request the way net/http's server would hand it to a
// handler (viaRequestURI) or the way a caller might construct one.
func fuzzRequest(method, host, path, query, authz, amzDate, ctype, contentSHA string, bodyLen int, viaRequestURI bool) *http.Request {
	req := &http.Request{Method: method, Host: host, Header: http.Header{}, ContentLength: int64(bodyLen)}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		u = &url.URL{Path: path}
	}
	u.RawQuery = query
	req.URL = u
	if viaRequestURI {
		req.RequestURI = path
		if query != "" {
			req.RequestURI += "?" + query
		}
	}
	for k, v := range map[string]string{"Authorization": authz, "X-Amz-Date": amzDate, "Content-Type": ctype, hdrContentSHA: contentSHA} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	return req
}

func FuzzVerify(f *testing.F) {
	v := newVerifier()

	// Seed with a genuinely valid request and mutations of it.
	body := `{"name":"s"}`
	r := httptest.NewRequest("DELETE", "http://rostrum.local/tags/"+escapedARN+"?tagKeys=a&tagKeys=b", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	sign(f, r, []byte(body), defaultSign())
	authz, amzDate := r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date")
	path := "/tags/" + escapedARN
	for _, via := range []bool{true, false} {
		if _, err := v.Verify(fuzzRequest("DELETE", "rostrum.local", path, "tagKeys=a&tagKeys=b", authz, amzDate, "application/json", "", len(body), via), []byte(body)); err != nil {
			f.Fatalf("valid seed rejected: %v", err)
		}
		f.Add("DELETE", "rostrum.local", path, "tagKeys=a&tagKeys=b", authz, amzDate, "application/json", "", body, via)
	}
	f.Add("DELETE", "rostrum.local", path, "tagKeys=a&tagKeys=b", authz, amzDate, "application/json", "UNSIGNED-PAYLOAD", body, true)
	f.Add("GET", "h", "/a//b/../%zz", "a=%zz&&=&+=+&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a/b/c/d/aws4_request&X-Amz-Date=x", "", "", "", "", "", true)
	f.Add("GET", "h", "/", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="+testAKID+"%2F20240101%2Fus-east-1%2Fivs%2Faws4_request&X-Amz-Date=20240101T003000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Expires=-1", "", "", "", "", "", true)
	f.Add("POST", "", "", "", "AWS4-HMAC-SHA256 Credential="+testAKID+"/20240101/us-east-1/ivs/aws4_request, SignedHeaders=;;HOST;:authority;content-length;transfer-encoding, Signature=ZZ", "20240101T003000Z", "", "", "x", false)
	f.Add("GET", "h", "*", "", "garbage", "", "", "", "", true)

	f.Fuzz(func(t *testing.T, method, host, path, query, authz, amzDate, ctype, contentSHA, body string, viaRequestURI bool) {
		req := fuzzRequest(method, host, path, query, authz, amzDate, ctype, contentSHA, len(body), viaRequestURI)
		p, verr := v.Verify(req, []byte(body))
		if verr == nil {
			if isUnsigned(contentSHA) {
				t.Fatalf("accepted an unsigned payload (%s)", contentSHA)
			}
			if p.AccessKeyID != testAKID || p.AccountID != testAccount {
				t.Fatalf("accepted with principal %+v", p)
			}
			return
		}
		var e *Error
		if !errors.As(verr, &e) {
			t.Fatalf("error %T %v", verr, verr)
		}
		switch e.Code {
		case CodeMissingAuthenticationToken, CodeIncompleteSignature, CodeUnrecognizedClient, CodeInvalidSignature:
		default:
			t.Fatalf("unexpected code %q", e.Code)
		}
		if e.Status != http.StatusForbidden || e.Message == "" {
			t.Fatalf("bad error %#v", e)
		}
		if p != (Principal{}) {
			t.Fatalf("error with principal %+v", p)
		}
	})
}
