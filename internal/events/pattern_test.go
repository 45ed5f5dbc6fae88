package events

import (
	"errors"
	"testing"
)

const sampleDoc = `{"version":"0","id":"x","detail-type":"IVS Stage Update","source":"aws.ivs","account":"123456789012",
"time":"2025-01-02T03:04:05Z","region":"us-east-1","resources":["arn:aws:ivs:us-east-1:123456789012:stage/abc"],
"detail":{"session_id":"st-1","event_name":"Participant Published","user_id":"","participant_id":"p1","n":7}}`

func TestPatternMatching(t *testing.T) {
	doc, err := decodeDoc([]byte(sampleDoc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{`{}`, true},
		{`{"source":["aws.ivs"]}`, true},
		{`{"source":["aws.other"]}`, false},
		{`{"detail-type":["IVS Composition State Change","IVS Stage Update"]}`, true},
		{`{"resources":["arn:aws:ivs:us-east-1:123456789012:stage/abc"]}`, true},
		{`{"resources":["arn:aws:ivs:us-east-1:123456789012:stage/other"]}`, false},
		{`{"resources":[{"prefix":"arn:aws:ivs:us-east-1:123456789012:stage/"}]}`, true},
		{`{"resources":[{"wildcard":"arn:aws:ivs:*:123456789012:stage/*"}]}`, true},
		{`{"resources":[{"wildcard":"arn:aws:ivs:*:999999999999:stage/*"}]}`, false},
		{`{"detail":{"event_name":["Participant Published"]}}`, true},
		{`{"detail":{"event_name":[{"anything-but":["Participant Published"]}]}}`, false},
		{`{"detail":{"event_name":[{"anything-but":{"prefix":"Session"}}]}}`, true},
		{`{"detail":{"event_name":[{"suffix":"Published"}]}}`, true},
		{`{"detail":{"event_name":[{"equals-ignore-case":"participant PUBLISHED"}]}}`, true},
		{`{"detail":{"user_id":[""]}}`, true},
		{`{"detail":{"error_code":[{"exists":false}]}}`, true},
		{`{"detail":{"error_code":[{"exists":true}]}}`, false},
		{`{"detail":{"participant_id":[{"exists":true}]}}`, true},
		{`{"detail":{"n":[7]}}`, true},
		{`{"detail":{"n":[{"numeric":[">",5,"<=",7]}]}}`, true},
		{`{"detail":{"n":[{"numeric":[">",7]}]}}`, false},
		{`{"detail":{"missing":{"deeper":[{"exists":false}]}}}`, true},
		{`{"source":["aws.ivs"],"detail":{"event_name":["Participant Unpublished"]}}`, false},
		{`{"$or":[{"detail-type":["nope"]},{"detail":{"participant_id":["p1"]}}]}`, true},
		{`{"$or":[{"detail-type":["nope"]},{"detail":{"participant_id":["p2"]}}]}`, false},
	} {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Errorf("%s: %v", tc.pattern, err)
			continue
		}
		if got := p.Match(doc); got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.pattern, got, tc.want)
		}
	}
}

func TestPatternErrors(t *testing.T) {
	for _, bad := range []string{
		``, `[]`, `"x"`, `{"source":"aws.ivs"}`, `{"source":[]}`, `{"source":[{"prefix":1}]}`,
		`{"source":[{"nope":"x"}]}`, `{"source":[{"prefix":"a","suffix":"b"}]}`, `{"n":[{"numeric":[">"]}]}`,
		`{"n":[{"numeric":["!",1]}]}`, `{"$or":[{"a":["b"]}]}`, `{"a":["b"]} trailing`, `{"a":[{"anything-but":[]}]}`,
	} {
		if _, err := ParsePattern(bad); !errors.Is(err, errPattern) {
			t.Errorf("ParsePattern(%q) = %v, want a pattern error", bad, err)
		}
	}
}

// Rostrum's own detail-type reaches only sinks that ask for it.
func TestSinkPatternDefaultsToIVSDetailTypes(t *testing.T) {
	activity, _ := decodeDoc(NewSessionEvent("arn:aws:ivs:us-east-1:123456789012:stage/abc", "st-1", fixedTime, true).Marshal())
	update, _ := decodeDoc([]byte(sampleDoc))
	for _, tc := range []struct {
		pattern          string
		update, activity bool
	}{
		{``, true, false},
		{`{"resources":[{"prefix":"arn:aws:ivs:us-east-1:123456789012:"}]}`, true, false},
		{`{"detail-type":["Rostrum Stage Activity"]}`, false, true},
		{`{"detail-type":["Rostrum Stage Activity","IVS Stage Update"]}`, true, true},
		{`{"detail-type":[{"prefix":""}]}`, true, true},
	} {
		p, err := SinkPattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		if got := p.Match(update); got != tc.update {
			t.Errorf("%s: Stage Update match = %v", tc.pattern, got)
		}
		if got := p.Match(activity); got != tc.activity {
			t.Errorf("%s: Stage Activity match = %v", tc.pattern, got)
		}
		if p.String() == "" {
			t.Errorf("%s: no description", tc.pattern)
		}
	}
	var nilPattern *Pattern
	if !nilPattern.Match(update) {
		t.Error("a nil pattern must match everything")
	}
}

func TestWildcard(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"a*c", "abc", true}, {"a*c", "ac", true}, {"a*c", "ab", false}, {"*", "", true},
		{"a*b*c", "a/x/b/y/c", true}, {"a*b*c", "acb", false}, {`a\*c`, "a*c", true}, {`a\*c`, "abc", false},
		{"abc", "abc", true}, {"abc", "abcd", false}, {"ab*ba", "aba", false},
	} {
		if got := compileWildcard(tc.pattern).match(tc.s, true); got != tc.want {
			t.Errorf("wildcard %q on %q = %v", tc.pattern, tc.s, got)
		}
	}
}
