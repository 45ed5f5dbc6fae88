package sigv4

import (
	"fmt"
	"strings"
)

// algorithm is the only signing algorithm Verify accepts. SigV4a
// (AWS4-ECDSA-P256-SHA256) is not used by ivs-realtime.
const algorithm = "AWS4-HMAC-SHA256"

// authorization is the parsed form of a SigV4 Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ivs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd...
//
// Missing parameters are left empty; the caller reports them all at once, the
// way AWS does.
type authorization struct {
	Algorithm     string
	Credential    string
	SignedHeaders string
	Signature     string
}

// String formats a in the canonical header layout the AWS SDKs send.
func (a authorization) String() string {
	return a.Algorithm + " Credential=" + a.Credential + ", SignedHeaders=" + a.SignedHeaders + ", Signature=" + a.Signature
}

func isAuthSep(r rune) bool { return r == ',' || r == ' ' || r == '\t' }

// parseAuthorization splits an Authorization header into its parts. Like AWS,
// it tokenises the parameter list on commas and whitespace, so a stray space
// inside a value (a classic copy-paste mistake in an access key) yields AWS's
// "not a valid key=value pair" error rather than a confusing signature
// mismatch. Unknown parameters are ignored; a repeated one is an error.
func parseAuthorization(h string) (authorization, *Error) {
	var a authorization
	s := strings.TrimLeft(h, " \t")
	alg, rest := s, ""
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		alg, rest = s[:i], s[i+1:]
	}
	if alg != algorithm {
		if strings.Contains(alg, "=") {
			// "Credential=..., ..." with no algorithm in front.
			return a, errIncomplete(fmt.Sprintf("Authorization header requires the '%s' algorithm before its parameters. Authorization=%s", algorithm, h))
		}
		return a, errIncomplete(fmt.Sprintf("Unsupported AWS 'algorithm': '%s'. Only '%s' is supported. Authorization=%s", alg, algorithm, h))
	}
	a.Algorithm = alg
	seen := 0
	for _, tok := range strings.FieldsFunc(rest, isAuthSep) {
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			return authorization{}, errIncomplete(fmt.Sprintf("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", tok, h))
		}
		var dst *string
		var bit int
		switch k {
		case "Credential":
			dst, bit = &a.Credential, 1
		case "SignedHeaders":
			dst, bit = &a.SignedHeaders, 2
		case "Signature":
			dst, bit = &a.Signature, 4
		default:
			continue
		}
		if seen&bit != 0 {
			return authorization{}, errIncomplete(fmt.Sprintf("Authorization header has more than one '%s' parameter. Authorization=%s", k, h))
		}
		seen |= bit
		*dst = v
	}
	return a, nil
}

// scope is a parsed credential: AKID/YYYYMMDD/region/service/aws4_request.
type scope struct {
	AccessKeyID, Date, Region, Service, Terminator string
}

// String returns the credential scope without the access key, as it appears
// in the string to sign.
func (s scope) String() string {
	return s.Date + "/" + s.Region + "/" + s.Service + "/" + s.Terminator
}

func parseCredential(c string) (scope, *Error) {
	parts := strings.Split(c, "/")
	if len(parts) != 5 {
		return scope{}, errIncomplete(fmt.Sprintf("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", c))
	}
	s := scope{parts[0], parts[1], parts[2], parts[3], parts[4]}
	if s.Terminator != "aws4_request" {
		return scope{}, errIncomplete(fmt.Sprintf("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", s.Terminator))
	}
	return s, nil
}
