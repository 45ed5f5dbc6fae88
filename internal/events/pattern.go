package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Pattern is an EventBridge event pattern: what a sink receives, as an
// EventBridge rule says it. Supported: nested fields, exact values (strings,
// numbers, booleans, null), arrays matching when any element matches,
// "prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but"
// (values, or a prefix or suffix), "exists", "numeric" and "$or".
type Pattern struct {
	root *object
	src  string
}

type object struct {
	keys []field
	ors  [][]*object // each "$or": the pattern matches if one alternative does
}

type field struct {
	name string
	sub  *object   // a nested pattern, or
	leaf []matcher // the values the field may match
}

// matcher tests one value of a field. present is false when the event has
// no such field (only "exists": false matches then).
type matcher interface {
	match(v any, present bool) bool
}

var errPattern = errors.New("event pattern")

func patternErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errPattern, fmt.Sprintf(format, args...))
}

// ParsePattern parses an event pattern (a JSON object).
func ParsePattern(src string) (*Pattern, error) {
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, patternErr("not JSON: %v", err)
	}
	if dec.More() {
		return nil, patternErr("text after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, patternErr("must be a JSON object")
	}
	root, err := compileObject(m, "")
	if err != nil {
		return nil, err
	}
	return &Pattern{root: root, src: src}, nil
}

// SinkPattern is the pattern of a sink: src (empty matches everything), and
// when it names no detail-type, only IVS's own detail-types, so that
// Rostrum's extra events reach only the sinks that ask for them.
func SinkPattern(src string) (*Pattern, error) {
	p := &Pattern{root: &object{}}
	if strings.TrimSpace(src) != "" {
		var err error
		if p, err = ParsePattern(src); err != nil {
			return nil, err
		}
	}
	if !slices.ContainsFunc(p.root.keys, func(f field) bool { return f.name == "detail-type" }) {
		var ms []matcher
		for _, dt := range IVSDetailTypes {
			ms = append(ms, exact{dt})
		}
		p.root.keys = append(p.root.keys, field{name: "detail-type", leaf: ms})
		ivs, _ := json.Marshal(IVSDetailTypes)
		if p.src == "" {
			p.src = `{"detail-type":` + string(ivs) + `}`
		} else {
			p.src += ` with "detail-type": ` + string(ivs)
		}
	}
	return p, nil
}

// String is the pattern as given.
func (p *Pattern) String() string { return p.src }

// Match reports whether a document, decoded into generic JSON values
// (json.Unmarshal into any), matches. A nil Pattern matches everything.
func (p *Pattern) Match(doc map[string]any) bool {
	if p == nil {
		return true
	}
	return p.root.match(doc)
}

func (o *object) match(doc map[string]any) bool {
	for _, f := range o.keys {
		v, present := doc[f.name]
		if f.sub != nil {
			m, _ := v.(map[string]any)
			if !f.sub.match(m) {
				return false
			}
			continue
		}
		if !matchLeaf(f.leaf, v, present) {
			return false
		}
	}
	for _, alts := range o.ors {
		if !slices.ContainsFunc(alts, func(a *object) bool { return a.match(doc) }) {
			return false
		}
	}
	return true
}

func matchLeaf(ms []matcher, v any, present bool) bool {
	vals := []any{v}
	if arr, ok := v.([]any); ok {
		vals = arr
		if len(arr) == 0 {
			vals = []any{nil}
			present = false
		}
	}
	for _, m := range ms {
		for _, x := range vals {
			if m.match(x, present) {
				return true
			}
		}
	}
	return false
}

func compileObject(m map[string]any, at string) (*object, error) {
	o := &object{}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		where := strings.TrimPrefix(at+"."+k, ".")
		switch v := m[k].(type) {
		case map[string]any:
			sub, err := compileObject(v, where)
			if err != nil {
				return nil, err
			}
			o.keys = append(o.keys, field{name: k, sub: sub})
		case []any:
			if k == "$or" {
				var alts []*object
				for _, a := range v {
					am, ok := a.(map[string]any)
					if !ok {
						return nil, patternErr("%s: each alternative must be an object", where)
					}
					sub, err := compileObject(am, at)
					if err != nil {
						return nil, err
					}
					alts = append(alts, sub)
				}
				if len(alts) < 2 {
					return nil, patternErr("%s: needs at least two alternatives", where)
				}
				o.ors = append(o.ors, alts)
				continue
			}
			if len(v) == 0 {
				return nil, patternErr("%s: an empty array matches nothing", where)
			}
			var ms []matcher
			for _, x := range v {
				mt, err := compileMatcher(x, where)
				if err != nil {
					return nil, err
				}
				ms = append(ms, mt)
			}
			o.keys = append(o.keys, field{name: k, leaf: ms})
		default:
			return nil, patternErr("%s: must be an array of values or an object", where)
		}
	}
	return o, nil
}

func compileMatcher(x any, where string) (matcher, error) {
	switch v := x.(type) {
	case nil, string, bool:
		return exact{v}, nil
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return nil, patternErr("%s: %v", where, err)
		}
		return exact{f}, nil
	case map[string]any:
		if len(v) != 1 {
			return nil, patternErr("%s: a matcher object has exactly one key", where)
		}
		for op, arg := range v {
			return compileOperator(op, arg, where)
		}
	}
	return nil, patternErr("%s: unsupported value %v", where, x)
}

func compileOperator(op string, arg any, where string) (matcher, error) {
	str := func() (string, error) {
		s, ok := arg.(string)
		if !ok {
			return "", patternErr("%s: %q takes a string", where, op)
		}
		return s, nil
	}
	switch op {
	case "prefix", "suffix", "equals-ignore-case", "wildcard":
		s, err := str()
		if err != nil {
			return nil, err
		}
		if op == "wildcard" {
			return compileWildcard(s), nil
		}
		return stringOp{op: op, arg: s}, nil
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return nil, patternErr("%s: \"exists\" takes true or false", where)
		}
		return exists(b), nil
	case "anything-but":
		var inner []matcher
		switch a := arg.(type) {
		case []any:
			if len(a) == 0 {
				return nil, patternErr("%s: \"anything-but\" needs values", where)
			}
			for _, x := range a {
				m, err := compileMatcher(x, where)
				if err != nil {
					return nil, err
				}
				inner = append(inner, m)
			}
		default:
			m, err := compileMatcher(a, where)
			if err != nil {
				return nil, err
			}
			if _, isExists := m.(exists); isExists {
				return nil, patternErr("%s: \"anything-but\" cannot take \"exists\"", where)
			}
			inner = append(inner, m)
		}
		return anythingBut(inner), nil
	case "numeric":
		a, ok := arg.([]any)
		if !ok || len(a) == 0 || len(a)%2 != 0 {
			return nil, patternErr("%s: \"numeric\" takes [op, number, ...]", where)
		}
		var n numeric
		for i := 0; i < len(a); i += 2 {
			o, ok1 := a[i].(string)
			num, ok2 := a[i+1].(json.Number)
			if !ok1 || !ok2 || !slices.Contains([]string{"<", "<=", "=", ">", ">="}, o) {
				return nil, patternErr("%s: \"numeric\" takes [op, number, ...]", where)
			}
			f, err := num.Float64()
			if err != nil {
				return nil, patternErr("%s: %v", where, err)
			}
			n = append(n, numCond{o, f})
		}
		return n, nil
	}
	return nil, patternErr("%s: unsupported operator %q", where, op)
}

type exact struct{ v any }

func (m exact) match(v any, present bool) bool {
	if !present {
		return false
	}
	if f, ok := m.v.(float64); ok {
		g, ok := toFloat(v)
		return ok && f == g
	}
	return v == m.v
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

type stringOp struct{ op, arg string }

func (m stringOp) match(v any, present bool) bool {
	s, ok := v.(string)
	if !present || !ok {
		return false
	}
	switch m.op {
	case "prefix":
		return strings.HasPrefix(s, m.arg)
	case "suffix":
		return strings.HasSuffix(s, m.arg)
	case "equals-ignore-case":
		return strings.EqualFold(s, m.arg)
	}
	return false
}

// wildcard is EventBridge's wildcard matcher: '*' matches any run of
// characters ('/' included: ARNs contain it), "\\*" a literal star.
type wildcard struct{ parts []string } // the literal text between stars

func compileWildcard(w string) wildcard {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(w); i++ {
		switch {
		case w[i] == '\\' && i+1 < len(w) && w[i+1] == '*':
			cur.WriteByte('*')
			i++
		case w[i] == '*':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(w[i])
		}
	}
	return wildcard{parts: append(parts, cur.String())}
}

func (m wildcard) match(v any, present bool) bool {
	s, ok := v.(string)
	if !present || !ok {
		return false
	}
	first, last := m.parts[0], m.parts[len(m.parts)-1]
	if len(m.parts) == 1 {
		return s == first
	}
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, mid := range m.parts[1 : len(m.parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return true
}

type exists bool

func (m exists) match(_ any, present bool) bool { return bool(m) == present }

type anythingBut []matcher

func (m anythingBut) match(v any, present bool) bool {
	if !present {
		return false
	}
	for _, x := range m {
		if x.match(v, true) {
			return false
		}
	}
	return true
}

type numCond struct {
	op string
	v  float64
}

type numeric []numCond

func (m numeric) match(v any, present bool) bool {
	f, ok := toFloat(v)
	if !present || !ok {
		return false
	}
	for _, c := range m {
		var ok bool
		switch c.op {
		case "<":
			ok = f < c.v
		case "<=":
			ok = f <= c.v
		case "=":
			ok = f == c.v
		case ">":
			ok = f > c.v
		case ">=":
			ok = f >= c.v
		}
		if !ok {
			return false
		}
	}
	return true
}

// decodeDoc decodes a document for matching.
func decodeDoc(doc []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
