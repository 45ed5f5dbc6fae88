package awsapi

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
)

// FuzzDecodeInput feeds arbitrary bodies, query strings and path labels to
// every operation's decoder. It must never panic, and whatever it accepts as
// valid must decode into the operation's typed input: validation has to
// cover every type and range the typed decoder relies on, or a request would
// pass validation and then fail as an internal error.
func FuzzDecodeInput(f *testing.F) {
	seeds := []string{
		`{}`, `{"name":"demo"}`, `{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl","duration":720}`,
		`{"duration":1e3}`, `{"duration":99999999999}`, `{"maxResults":1.5}`, `{"tags":{"a":null}}`,
		`{"participantTokenConfigurations":[{"capabilities":["PUBLISH"]},null]}`, `{"video":{"framerate":1e400}}`,
		`[1,2]`, `null`, `{"arn":{"x":1}}`, "{\"name\":\"\u00e9\"}",
	}
	for i, s := range seeds {
		f.Add(uint8(i), s, "tagKeys=a&tagKeys=b", "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl")
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, body, query, label string) {
		op := api.Operations[int(opIndex)%len(api.Operations)]
		r := httptest.NewRequest(op.Method, "/x", strings.NewReader(body))
		r.URL.RawQuery = query
		in, aerr := decodeInput(op, r, label, []byte(body))
		if aerr != nil {
			if aerr.Code != api.ValidationException || aerr.Message == "" {
				t.Fatalf("%s: error %v is not a ValidationException with a message", op.Name, aerr)
			}
			return
		}
		if err := json.Unmarshal(in, api.NewInput(op.Name)); err != nil {
			t.Fatalf("%s: validated input %s does not decode: %v", op.Name, in, err)
		}
	})
}
