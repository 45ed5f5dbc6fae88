package cluster

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTagResourcesNamesTheNode(t *testing.T) {
	h := http.Header{}
	h.Set("Location", "/whip/resources/abc")
	h.Add("Link", `</whip/resources/abc/layers>; rel="urn:ietf:params:whep:ext:core:layer"`)
	h.Add("Link", `</whip/resources/abc/playback>; rel="urn:ietf:params:whep:core:playback-controls"`)
	tagResources(h, "media-1:8080")
	if got := h.Get("Location"); got != "/whip/resources/media-1:8080~abc" {
		t.Errorf("Location %q", got)
	}
	links := h.Values("Link")
	if len(links) != 2 || links[0] != `</whip/resources/media-1:8080~abc/layers>; rel="urn:ietf:params:whep:ext:core:layer"` {
		t.Errorf("Link %q", links)
	}
}

func TestJoinsAndTheirTokens(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		join         bool
	}{
		{"POST", "/whip", true},
		{"POST", "/whip/publish/p1", true},
		{"POST", "/whip/subscribe/p2", true},
		{"GET", "/events", true},
		{"GET", "/events/stage-id", true},
		{"OPTIONS", "/whip", false},
		{"DELETE", "/whip/resources/x", false},
		{"GET", "/whip", false},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if got := joins(r); got != tc.join {
			t.Errorf("%s %s: joins %v, want %v", tc.method, tc.path, got, tc.join)
		}
	}
	r := httptest.NewRequest("POST", "/whip", nil)
	r.Header.Set("Authorization", "Bearer tok1")
	if token(r) != "tok1" {
		t.Errorf("bearer token %q", token(r))
	}
	r = httptest.NewRequest("GET", "/events", nil)
	r.Header.Set("Sec-WebSocket-Protocol", "tok2")
	if token(r) != "tok2" {
		t.Errorf("subprotocol token %q", token(r))
	}
}

// A request claiming to be forwarded is served here only with the mark
// that the cluster's shared secret makes.
func TestForwardedMarkIsChecked(t *testing.T) {
	served := 0
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ })
	f := NewForwarder(ForwarderConfig{Local: local, Secret: "s3cret"})
	other := NewForwarder(ForwarderConfig{Local: local, Secret: "another"})

	r := httptest.NewRequest("POST", "/whip", nil)
	r.Header.Set(ForwardedHeader, other.mark)
	w := httptest.NewRecorder()
	f.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || served != 0 {
		t.Fatalf("a forged mark: %d, served %d", w.Code, served)
	}
	r.Header.Set(ForwardedHeader, f.mark)
	w = httptest.NewRecorder()
	f.ServeHTTP(w, r)
	if w.Code != http.StatusOK || served != 1 {
		t.Fatalf("the cluster's mark: %d, served %d", w.Code, served)
	}
}
