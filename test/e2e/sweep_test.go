package e2e

// The constraint sweep checks the server's input validation against the
// botocore model itself, not against the tables generated from it: it parses
// service-2.json here, walks every operation's input shape and, for each
// constraint it finds, sends one request that is valid everywhere except for
// that one violation.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// sweepModelPath is the botocore model, relative to test/e2e.
const sweepModelPath = "../../../shared/api/ivs-realtime/service-2.json"

// minSweepViolations guards against a sweep that silently checks nothing.
const minSweepViolations = 300

// The botocore model, parsed independently of internal/apimodel.

type sweepModel struct {
	Operations map[string]*sweepOp    `json:"operations"`
	Shapes     map[string]*sweepShape `json:"shapes"`
}

type sweepOp struct {
	Name string `json:"name"`
	HTTP struct {
		Method     string `json:"method"`
		RequestURI string `json:"requestUri"`
	} `json:"http"`
	Input *sweepRef `json:"input"`
}

type sweepRef struct {
	Shape        string `json:"shape"`
	Location     string `json:"location"`
	LocationName string `json:"locationName"`
}

type sweepShape struct {
	Type     string               `json:"type"`
	Members  map[string]*sweepRef `json:"members"`
	Required []string             `json:"required"`
	Member   *sweepRef            `json:"member"`
	Key      *sweepRef            `json:"key"`
	Value    *sweepRef            `json:"value"`
	Min      *float64             `json:"min"`
	Max      *float64             `json:"max"`
	Pattern  *string              `json:"pattern"`
	Enum     []string             `json:"enum"`
}

func (s *sweepShape) isRequired(member string) bool {
	for _, r := range s.Required {
		if r == member {
			return true
		}
	}
	return false
}

func (s *sweepShape) memberNames() []string {
	names := make([]string, 0, len(s.Members))
	for n := range s.Members {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func loadSweepModel(t *testing.T) *sweepModel {
	t.Helper()
	raw, err := os.ReadFile(sweepModelPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("the ivs-realtime botocore model is not at %s: it lives in ../shared (shared/api/ivs-realtime/service-2.json, next to this repository) and this sweep needs it to check the server against the model", sweepModelPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	var m sweepModel
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("parse %s: %v", sweepModelPath, err)
	}
	if len(m.Operations) == 0 {
		t.Fatalf("%s has no operations", sweepModelPath)
	}
	return &m
}

func (m *sweepModel) opNames() []string {
	names := make([]string, 0, len(m.Operations))
	for n := range m.Operations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Value generation.

// sweepResourceArnShape is the shape whose model pattern no real ARN matches
// (a one-character resource type); API-NOTES documents that the server
// validates "an IVS ARN of any type" instead, and so does the sweep.
const sweepResourceArnShape = "ResourceArn"

const sweepResourceArnRelaxed = `arn:aws:ivs:[a-z0-9-]+:[0-9]+:[a-z-]+/[a-zA-Z0-9-]+`

const (
	sweepArnPrefixFmt = "arn:aws:ivs:" + testRegion + ":" + testAccount + ":%s/"
	sweepArnID        = "AbCdEfGhIjKl"
	sweepAlnum        = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	// candidates for pattern-valid filler characters, most ordinary first
	sweepFillChars = sweepAlnum + "-_.+/=,:;"
	// candidates for a character a pattern forbids
	sweepForbiddenChars = "!@#$%^&*()~`|\\<>?é "
)

var (
	sweepClassPatternRE = regexp.MustCompile(`^([A-Za-z0-9-]*)(\[[^\]]+\])([*+])$`)
	sweepArnTypeRE      = regexp.MustCompile(`:([a-z-]+)/\[`)
)

// sweepStringKind says how to produce values of one string shape's pattern.
type sweepStringKind struct {
	kind     string // "free", "class", "arn", "pem", "enum"
	prefix   string // class: fixed prefix; arn: "arn:aws:ivs:…:type/"
	arnType  string
	allowed  []rune // class: pattern-valid filler characters, alphanumerics first
	forbid   rune   // class/arn: a character the pattern rejects (0 if none)
	minChars int    // fewest characters after the prefix the pattern needs
}

type sweepGen struct {
	t     *testing.T
	m     *sweepModel
	pem   string
	re    map[string]*regexp.Regexp
	kinds map[string]*sweepStringKind
}

func newSweepGen(t *testing.T, m *sweepModel) *sweepGen {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	g := &sweepGen{t: t, m: m, pem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		re: map[string]*regexp.Regexp{}, kinds: map[string]*sweepStringKind{}}
	return g
}

func (g *sweepGen) shape(name string) *sweepShape {
	s, ok := g.m.Shapes[name]
	if !ok {
		g.t.Fatalf("model refers to shape %q, which it does not define", name)
	}
	return s
}

// regexp is the shape's pattern as the whole value must match it (botocore
// drops the anchors; AWS matches whole values).
func (g *sweepGen) regexp(name string) *regexp.Regexp {
	s := g.shape(name)
	if s.Pattern == nil {
		return nil
	}
	if re, ok := g.re[name]; ok {
		return re
	}
	p := *s.Pattern
	if name == sweepResourceArnShape {
		p = sweepResourceArnRelaxed
	}
	re, err := regexp.Compile("^(?:" + p + ")$")
	if err != nil {
		g.t.Fatalf("pattern of %s does not compile: %v", name, err)
	}
	g.re[name] = re
	return re
}

func (g *sweepGen) stringKind(name string) *sweepStringKind {
	if k, ok := g.kinds[name]; ok {
		return k
	}
	s := g.shape(name)
	k := &sweepStringKind{kind: "free"}
	switch {
	case len(s.Enum) > 0:
		k.kind = "enum"
	case s.Pattern == nil:
	case name == sweepResourceArnShape:
		k.kind, k.arnType, k.forbid, k.minChars = "arn", "stage", '!', 1
	case strings.Contains(*s.Pattern, "arn:aws:ivs:"):
		mt := sweepArnTypeRE.FindStringSubmatch(*s.Pattern)
		if mt == nil {
			g.t.Fatalf("no resource type in the ARN pattern of %s: %q", name, *s.Pattern)
		}
		k.kind, k.arnType, k.forbid, k.minChars = "arn", mt[1], '!', 1
	case strings.Contains(*s.Pattern, "BEGIN PUBLIC KEY"):
		k.kind = "pem"
	default:
		mt := sweepClassPatternRE.FindStringSubmatch(*s.Pattern)
		if mt == nil {
			g.t.Fatalf("the sweep has no generator for the pattern of %s: %q; teach it this pattern", name, *s.Pattern)
		}
		k.kind, k.prefix = "class", mt[1]
		if mt[3] == "+" {
			k.minChars = 1
		}
		one := regexp.MustCompile("^" + mt[2] + "$")
		for _, c := range sweepFillChars {
			if one.MatchString(string(c)) {
				k.allowed = append(k.allowed, c)
			}
		}
		for _, c := range sweepForbiddenChars {
			if !one.MatchString(string(c)) {
				k.forbid = c
				break
			}
		}
		if len(k.allowed) == 0 {
			g.t.Fatalf("no filler character satisfies the pattern of %s: %q", name, *s.Pattern)
		}
	}
	if k.kind == "arn" {
		k.prefix = fmt.Sprintf(sweepArnPrefixFmt, k.arnType)
	}
	g.kinds[name] = k
	return k
}

// sweepFill returns n pattern-valid characters starting at offset.
func sweepFill(chars []rune, n, offset int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteRune(chars[(offset+i)%len(chars)])
	}
	return b.String()
}

// stringOfLen returns a value of exactly n characters that satisfies the
// shape's pattern (ignoring its length limits), if one exists.
func (g *sweepGen) stringOfLen(name string, n, variant int) (string, bool) {
	k := g.stringKind(name)
	switch k.kind {
	case "free":
		return sweepFill([]rune(sweepAlnum), n, variant), true
	case "class", "arn":
		chars := k.allowed
		if k.kind == "arn" {
			chars = []rune(sweepAlnum)
		}
		rest := n - utf8.RuneCountInString(k.prefix)
		if rest < k.minChars {
			return "", false
		}
		return k.prefix + sweepFill(chars, rest, variant), true
	}
	return "", false
}

// sweepBounds are a shape's min and max, with ok flags.
func sweepBounds(s *sweepShape) (lo int, hasLo bool, hi int, hasHi bool) {
	if s.Min != nil {
		lo, hasLo = int(*s.Min), true
	}
	if s.Max != nil {
		hi, hasHi = int(*s.Max), true
	}
	return
}

// validString is a known-good value of a string shape; variant makes values
// distinct.
func (g *sweepGen) validString(name string, variant int) string {
	s := g.shape(name)
	k := g.stringKind(name)
	var v string
	switch k.kind {
	case "enum":
		v = s.Enum[variant%len(s.Enum)]
	case "pem":
		v = g.pem
	case "arn":
		v = k.prefix + sweepArnID
		if variant > 0 {
			v += strconv.Itoa(variant)
		}
	default:
		lo, hasLo, hi, hasHi := sweepBounds(s)
		n := utf8.RuneCountInString(k.prefix) + 8
		if hasLo && n < lo {
			n = lo
		}
		if hasHi && n > hi {
			n = hi
		}
		var ok bool
		if v, ok = g.stringOfLen(name, n, variant); !ok {
			g.t.Fatalf("cannot make a valid %d-character value for %s", n, name)
		}
	}
	if err := g.checkString(name, v); err != nil {
		g.t.Fatalf("sweep generator bug: baseline %q for %s: %v", v, name, err)
	}
	return v
}

// checkString reports how v breaks the shape's constraints, or nil.
func (g *sweepGen) checkString(name, v string) error {
	s := g.shape(name)
	n := utf8.RuneCountInString(v)
	lo, hasLo, hi, hasHi := sweepBounds(s)
	if hasLo && n < lo {
		return fmt.Errorf("length %d < min %d", n, lo)
	}
	if hasHi && n > hi {
		return fmt.Errorf("length %d > max %d", n, hi)
	}
	if re := g.regexp(name); re != nil && !re.MatchString(v) {
		return fmt.Errorf("does not match %s", re)
	}
	if len(s.Enum) > 0 {
		for _, e := range s.Enum {
			if e == v {
				return nil
			}
		}
		return errors.New("not in the enum")
	}
	return nil
}

func (g *sweepGen) validInt(s *sweepShape, variant int) int64 {
	lo, hi := int64(0), int64(1_000_000)
	if s.Min != nil {
		lo = int64(*s.Min)
	}
	if s.Max != nil {
		hi = int64(*s.Max)
	} else if hi < lo {
		hi = lo + 1_000_000
	}
	return lo + int64(variant)%(hi-lo+1)
}

// value is a known-good value of any shape. Structures get their required
// members, or every member when full; lists get max(min,1) items.
func (g *sweepGen) value(name string, variant int, full bool) any {
	s := g.shape(name)
	switch s.Type {
	case "structure":
		return g.structValue(name, variant, full)
	case "list":
		n := sweepListLen(s)
		items := make([]any, n)
		for i := range items {
			items[i] = g.value(s.Member.Shape, variant+i, full)
		}
		return items
	case "map":
		key := g.validString(s.Key.Shape, variant)
		return map[string]any{key: g.value(s.Value.Shape, variant, full)}
	case "string":
		return g.validString(name, variant)
	case "integer", "long":
		return g.validInt(s, variant)
	case "float", "double":
		return float64(g.validInt(s, variant))
	case "boolean":
		return true
	case "timestamp":
		return "2024-01-02T03:04:05Z"
	}
	g.t.Fatalf("shape %s has type %q, which the sweep does not know", name, s.Type)
	return nil
}

// structValue fills a structure's required members (every member when full;
// a non-zero variant also fills every member, so that list items differ).
func (g *sweepGen) structValue(name string, variant int, full bool) map[string]any {
	s := g.shape(name)
	obj := map[string]any{}
	for _, mn := range s.memberNames() {
		if full || variant > 0 || s.isRequired(mn) {
			obj[mn] = g.value(s.Members[mn].Shape, variant, full)
		}
	}
	return obj
}

func sweepListLen(s *sweepShape) int {
	n := 1
	if s.Min != nil && int(*s.Min) > n {
		n = int(*s.Min)
	}
	if s.Max != nil && int(*s.Max) < n {
		n = int(*s.Max)
	}
	return n
}

// Violations.

type sweepCase struct {
	path string         // member path as AWS messages write it
	name string         // subtest name of the path (map values: key shown as {key})
	kind string         // constraint violated
	hint string         // text the message must contain besides the path ("" for none)
	obj  map[string]any // the whole input, valid except for the violation

	// the HTTP request for obj, filled in by prepare
	method, target string
	body           []byte
}

// sweepWrapFn puts a value (or its absence) at one position of an otherwise valid
// input and returns the whole input.
type sweepWrapFn func(v any, absent bool) map[string]any

type sweepWalker struct {
	g     *sweepGen
	op    string
	cases []sweepCase
	edges []sweepCase // valid values at the limits, for the baseline test
	skips []string
	notes []string
}

func (w *sweepWalker) add(path, name, kind, hint string, obj map[string]any) {
	w.cases = append(w.cases, sweepCase{path: path, name: name, kind: kind, hint: hint, obj: obj})
}

// edge records a request whose value sits exactly on a limit and is valid.
func (w *sweepWalker) edge(path, name, kind string, obj map[string]any) {
	w.edges = append(w.edges, sweepCase{path: path, name: name, kind: kind, obj: obj})
}

func (w *sweepWalker) skip(name, kind, why string) {
	w.skips = append(w.skips, fmt.Sprintf("skip %s/%s/%s: %s", w.op, name, kind, why))
}

func (w *sweepWalker) note(name, kind, what string) {
	w.notes = append(w.notes, fmt.Sprintf("note %s/%s/%s: %s", w.op, name, kind, what))
}

const (
	sweepHintRequired = "Member must not be null"
	sweepHintMinLen   = "length greater than or equal to"
	sweepHintMaxLen   = "length less than or equal to"
	sweepHintPattern  = "regular expression pattern"
	sweepHintEnum     = "enum value set"
	sweepHintMinValue = "value greater than or equal to"
	sweepHintMaxValue = "value less than or equal to"
	sweepLocURI       = "uri"
	sweepLocQuery     = "querystring"
)

// walkStruct emits the violations of a structure's members; wrap places a
// structure value where this one sits.
func (w *sweepWalker) walkStruct(shapeName, path, name string, wrap sweepWrapFn, top bool) {
	s := w.g.shape(shapeName)
	for _, mn := range s.memberNames() {
		ref := s.Members[mn]
		if ref.Location == "header" {
			continue
		}
		mp, mname := sweepJoin(path, mn), sweepJoin(name, mn)
		mwrap := func(v any, absent bool) map[string]any {
			obj := w.g.structValue(shapeName, 0, false)
			if absent {
				delete(obj, mn)
			} else {
				obj[mn] = v
			}
			return wrap(obj, false)
		}
		loc := ""
		if top {
			loc = ref.Location
		}
		if s.isRequired(mn) {
			if loc == sweepLocURI {
				w.skip(mname, "required", "a URI label cannot be left out: without it the path is /tags/, which routes to no operation")
			} else {
				w.add(mp, mname, "required", sweepHintRequired, mwrap(nil, true))
				if loc == "" {
					w.add(mp, mname, "required-null", sweepHintRequired, mwrap(nil, false))
				}
			}
		}
		w.walkValue(ref.Shape, mp, mname, mwrap, loc)
	}
}

func sweepJoin(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// walkValue emits the violations of the value at one position and of
// everything nested in it. loc is the member's HTTP location at top level.
func (w *sweepWalker) walkValue(shapeName, path, name string, wrap sweepWrapFn, loc string) {
	g := w.g
	s := g.shape(shapeName)
	if loc != "" {
		if s.Type != "string" && !(s.Type == "list" && loc == sweepLocQuery) {
			g.t.Fatalf("%s: %s member %s of type %s: the sweep only knows string labels and list query params", w.op, loc, path, s.Type)
		}
		w.skip(name, "type", "a "+loc+" value is always a string on the wire")
	} else {
		w.add(path, name, "type", "", wrap(sweepWrongType(s.Type), false))
	}
	switch s.Type {
	case "structure":
		w.walkStruct(shapeName, path, name, wrap, false)
	case "list":
		w.walkList(shapeName, path, name, wrap, loc)
	case "map":
		w.walkMap(shapeName, path, name, wrap)
	case "string":
		w.walkString(shapeName, path, name, wrap, loc)
	case "integer", "long", "float", "double":
		w.walkNumber(shapeName, path, name, wrap)
	}
}

// sweepWrongType is a JSON value of another type than t.
func sweepWrongType(t string) any {
	switch t {
	case "string", "timestamp":
		return 42
	case "integer", "long", "float", "double":
		return "5"
	case "boolean":
		return "true"
	case "list":
		return "not-a-list"
	case "map":
		return []any{"not", "a", "map"}
	}
	return "not-an-object"
}

func (w *sweepWalker) walkList(shapeName, path, name string, wrap sweepWrapFn, loc string) {
	g := w.g
	s := g.shape(shapeName)
	items := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = g.value(s.Member.Shape, i, false)
		}
		return out
	}
	lo, hasLo, hi, hasHi := sweepBounds(s)
	switch {
	case !hasLo:
	case lo <= 0:
		w.skip(name, "min", "min 0 items cannot be violated")
	default:
		v := items(lo - 1)
		if loc == sweepLocQuery && lo-1 == 0 {
			w.note(name, "min", "an empty query list is the same as an absent one")
		}
		w.add(path, name, "min", sweepHintMinLen, wrap(v, false))
	}
	if hasHi {
		v := items(hi + 1)
		if !sweepDistinct(v) {
			w.note(name, "max", fmt.Sprintf("%d items of %s cannot all differ, so this list also repeats an item", hi+1, s.Member.Shape))
		}
		w.add(path, name, "max", sweepHintMaxLen, wrap(v, false))
		if hi > 0 {
			w.edge(path, name, "max", wrap(items(hi), false))
		}
	}
	if hasLo && !(loc == sweepLocQuery && lo == 0) {
		w.edge(path, name, "min", wrap(items(lo), false))
	}
	n := sweepListLen(s)
	ep, ename := path+".1.member", name+".1.member"
	ewrap := func(v any, absent bool) map[string]any {
		list := items(n)
		list[0] = v
		return wrap(list, false)
	}
	w.walkValue(s.Member.Shape, ep, ename, ewrap, loc)
	if loc == "" {
		// Lists in the model are not sparse: an item cannot be null.
		w.add(ep, ename, "null-item", "must not be null", ewrap(nil, false))
	}
}

func sweepDistinct(items []any) bool {
	seen := map[string]bool{}
	for _, it := range items {
		b, _ := json.Marshal(it)
		if seen[string(b)] {
			return false
		}
		seen[string(b)] = true
	}
	return true
}

func (w *sweepWalker) walkMap(shapeName, path, name string, wrap sweepWrapFn) {
	g := w.g
	s := g.shape(shapeName)
	entries := func(n int) map[string]any {
		out := map[string]any{}
		for i := 0; i < n; i++ {
			out[g.validString(s.Key.Shape, i)] = g.value(s.Value.Shape, i, false)
		}
		if len(out) != n {
			g.t.Fatalf("%s: cannot make %d distinct keys of %s", w.op, n, s.Key.Shape)
		}
		return out
	}
	lo, hasLo, hi, hasHi := sweepBounds(s)
	switch {
	case !hasLo:
	case lo <= 0:
		w.skip(name, "min", "min 0 entries cannot be violated")
	default:
		w.add(path, name, "min", sweepHintMinLen, wrap(entries(lo-1), false))
	}
	if hasHi {
		w.add(path, name, "max", sweepHintMaxLen, wrap(entries(hi+1), false))
		w.edge(path, name, "max", wrap(entries(hi), false))
	}
	if hasLo {
		w.edge(path, name, "min", wrap(entries(lo), false))
	}
	// Keys: the message names the map itself.
	kname := name + ".{key}"
	w.skip(kname, "type", "JSON object keys are always strings")
	kwrap := func(v any, absent bool) map[string]any {
		return wrap(map[string]any{v.(string): g.value(s.Value.Shape, 0, false)}, false)
	}
	w.stringViolations(s.Key.Shape, path, kname, kwrap, "")
	// Values.
	key := g.validString(s.Key.Shape, 0)
	vwrap := func(v any, absent bool) map[string]any {
		return wrap(map[string]any{key: v}, false)
	}
	w.walkValue(s.Value.Shape, path+"."+key, name+".{value}", vwrap, "")
	// Maps in the model are not sparse: a value cannot be null.
	w.add(path+"."+key, name+".{value}", "null-value", "must not be null", vwrap(nil, false))
}

func (w *sweepWalker) walkString(shapeName, path, name string, wrap sweepWrapFn, loc string) {
	w.stringViolations(shapeName, path, name, wrap, loc)
}

// stringViolations emits length, pattern and enum violations of a string
// shape (everything but its type).
func (w *sweepWalker) stringViolations(shapeName, path, name string, wrap sweepWrapFn, loc string) {
	g := w.g
	s := g.shape(shapeName)
	k := g.stringKind(shapeName)
	lo, hasLo, hi, hasHi := sweepBounds(s)
	// lengthValue is a pattern-valid value of n characters, or the
	// nearest thing, with a note when it also breaks the pattern.
	lengthValue := func(kind string, n int) string {
		if v, ok := g.stringOfLen(shapeName, n, 0); ok && len(s.Enum) == 0 {
			if re := g.regexp(shapeName); re == nil || re.MatchString(v) {
				return v
			}
		}
		v := sweepFill([]rune(sweepAlnum), n, 0)
		w.note(name, kind, fmt.Sprintf("no %d-character value satisfies the pattern or enum, so %q also breaks it", n, v))
		return v
	}
	switch {
	case !hasLo:
	case lo <= 0:
		w.skip(name, "min", "min length 0 cannot be violated")
	case loc == sweepLocURI && lo == 1:
		w.skip(name, "min", "an empty URI label makes the path /tags/, which routes to no operation")
	default:
		w.add(path, name, "min", sweepHintMinLen, wrap(lengthValue("min", lo-1), false))
	}
	if hasHi {
		w.add(path, name, "max", sweepHintMaxLen, wrap(lengthValue("max", hi+1), false))
	}
	// Valid values exactly at the length limits, where the pattern allows.
	for _, e := range []struct {
		kind string
		n    int
		ok   bool
	}{{"min", lo, hasLo && !(loc == sweepLocURI && lo == 0)}, {"max", hi, hasHi}} {
		if !e.ok || len(s.Enum) > 0 {
			continue
		}
		if v, ok := g.stringOfLen(shapeName, e.n, 0); ok && g.checkString(shapeName, v) == nil {
			w.edge(path, name, e.kind, wrap(v, false))
		}
	}
	for _, v := range s.Enum {
		w.edge(path, name, "enum-"+v, wrap(v, false))
	}
	if len(s.Enum) > 0 {
		bad := "NOT_AN_ENUM_VALUE"
		if g.checkString(shapeName, bad) == nil {
			g.t.Fatalf("%s: %q is a value of enum %s", w.op, bad, shapeName)
		}
		w.add(path, name, "enum", sweepHintEnum, wrap(bad, false))
	}
	if s.Pattern == nil {
		return
	}
	if shapeName == sweepResourceArnShape {
		// The model's pattern matches no real ARN; the server checks for an
		// IVS ARN of any type, so send something that is not an IVS ARN.
		bad := "arn:aws:s3:::not-an-ivs-resource"
		if g.regexp(shapeName).MatchString(bad) {
			g.t.Fatalf("%q matches %s", bad, g.regexp(shapeName))
		}
		w.add(path, name, "pattern", sweepHintPattern, wrap(bad, false))
		w.skip(name, "pattern-arn-type", "ResourceArn accepts an IVS ARN of any resource type (the model's one-character type matches no real ARN)")
		return
	}
	var bad string
	switch k.kind {
	case "class", "arn":
		base := g.validString(shapeName, 0)
		if k.forbid == 0 {
			w.skip(name, "pattern", fmt.Sprintf("pattern %q accepts every character tried", *s.Pattern))
			return
		}
		if utf8.RuneCountInString(base) > utf8.RuneCountInString(k.prefix) {
			r := []rune(base)
			r[len(r)-1] = k.forbid // same length: only the pattern breaks
			bad = string(r)
		} else {
			bad = base + string(k.forbid)
		}
	case "pem":
		bad = "this is not a PEM public key"
	default:
		w.skip(name, "pattern", fmt.Sprintf("no violating value known for pattern %q", *s.Pattern))
		return
	}
	if g.regexp(shapeName).MatchString(bad) {
		g.t.Fatalf("sweep generator bug: %q still matches the pattern of %s", bad, shapeName)
	}
	if err := g.checkString(shapeName, bad); err == nil || !strings.HasPrefix(err.Error(), "does not match") {
		w.note(name, "pattern", fmt.Sprintf("%q breaks more than the pattern: %v", bad, err))
	}
	w.add(path, name, "pattern", sweepHintPattern, wrap(bad, false))
	if k.kind == "arn" {
		other := "channel"
		if k.arnType == other {
			other = "stage"
		}
		wrongARN := fmt.Sprintf(sweepArnPrefixFmt, other) + sweepArnID
		if g.regexp(shapeName).MatchString(wrongARN) {
			g.t.Fatalf("sweep generator bug: %q matches the pattern of %s", wrongARN, shapeName)
		}
		w.add(path, name, "pattern-arn-type", sweepHintPattern, wrap(wrongARN, false))
	}
}

func (w *sweepWalker) walkNumber(shapeName, path, name string, wrap sweepWrapFn) {
	s := w.g.shape(shapeName)
	isInt := s.Type == "integer" || s.Type == "long"
	num := func(f float64) any {
		if isInt {
			return int64(f)
		}
		return f
	}
	if s.Min != nil {
		w.add(path, name, "min", sweepHintMinValue, wrap(num(*s.Min-1), false))
		w.edge(path, name, "min", wrap(num(*s.Min), false))
		if !isInt {
			w.add(path, name, "min-fraction", sweepHintMinValue, wrap(*s.Min-0.5, false))
		}
	}
	if s.Max != nil {
		w.add(path, name, "max", sweepHintMaxValue, wrap(num(*s.Max+1), false))
		w.edge(path, name, "max", wrap(num(*s.Max), false))
		if !isInt {
			w.add(path, name, "max-fraction", sweepHintMaxValue, wrap(*s.Max+0.5, false))
		}
	}
	if isInt {
		// A number that is not an integer: 1.5 fits every range here.
		w.add(path, name, "type-fraction", "", wrap(json.Number(strconv.FormatInt(w.g.validInt(s, 0), 10)+".5"), false))
	}
}

// Sending.

// sweepEscapeLabel escapes a URI label as AWS SDKs do (aws-sdk-go-v2 EscapePath
// with encodeSep): everything but A-Za-z0-9-._~, so ":" too, which
// url.PathEscape leaves alone.
func sweepEscapeLabel(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
}

// request turns an input object into the method, path and body the
// operation's HTTP binding asks for.
func (g *sweepGen) request(op *sweepOp, obj map[string]any) (string, string, []byte) {
	input := g.shape(op.Input.Shape)
	path := op.HTTP.RequestURI
	query := url.Values{}
	body := map[string]any{}
	for k, v := range obj {
		ref := input.Members[k]
		if ref == nil {
			g.t.Fatalf("%s: input has no member %s", op.Name, k)
		}
		loc := ref.LocationName
		if loc == "" {
			loc = k
		}
		switch ref.Location {
		case sweepLocURI:
			s, ok := v.(string)
			if !ok {
				g.t.Fatalf("%s: URI label %s is %T", op.Name, k, v)
			}
			path = strings.Replace(path, "{"+loc+"}", sweepEscapeLabel(s), 1)
		case sweepLocQuery:
			switch x := v.(type) {
			case []any:
				for _, e := range x {
					query.Add(loc, fmt.Sprint(e))
				}
			default:
				query.Add(loc, fmt.Sprint(x))
			}
		default:
			body[loc] = v
		}
	}
	if strings.Contains(path, "{") {
		g.t.Fatalf("%s: path %s still has a label", op.Name, path)
	}
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	var raw []byte
	if len(body) > 0 || op.HTTP.Method == http.MethodPost || op.HTTP.Method == http.MethodPut {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			g.t.Fatal(err)
		}
	}
	return op.HTTP.Method, path, raw
}

func sweepExceptionMessage(body []byte) string {
	var e struct {
		ExceptionMessage string `json:"exceptionMessage"`
	}
	json.Unmarshal(body, &e)
	return e.ExceptionMessage
}

// operationCases builds every violation of one operation's input, with
// its HTTP request. It runs on the top-level test's goroutine, since its
// generator-bug checks call t.Fatal.
func (g *sweepGen) operationCases(op *sweepOp) *sweepWalker {
	w := &sweepWalker{g: g, op: op.Name}
	if op.Input != nil {
		w.walkStruct(op.Input.Shape, "", "", func(v any, absent bool) map[string]any { return v.(map[string]any) }, true)
	}
	for _, list := range [][]sweepCase{w.cases, w.edges} {
		for i := range list {
			list[i].method, list[i].target, list[i].body = g.request(op, list[i].obj)
		}
	}
	return w
}

// TestModelConstraintSweep sends, for every operation and every constraint
// in its input shape, one request that breaks just that constraint, and
// checks that the server answers ValidationException naming the member.
func TestModelConstraintSweep(t *testing.T) {
	m := loadSweepModel(t)
	g := newSweepGen(t, m)
	ts := startServer(t, "")
	var ops, sent, skipped int
	kinds := map[string]int{}
	for _, name := range m.opNames() {
		op := m.Operations[name]
		w := g.operationCases(op)
		ops++
		for _, s := range w.skips {
			t.Log(s)
		}
		for _, n := range w.notes {
			t.Log(n)
		}
		skipped += len(w.skips)
		// Group by path for subtests <Operation>/<path>/<constraint>.
		var paths []string
		byPath := map[string][]sweepCase{}
		for _, c := range w.cases {
			if _, ok := byPath[c.name]; !ok {
				paths = append(paths, c.name)
			}
			byPath[c.name] = append(byPath[c.name], c)
		}
		t.Run(name, func(t *testing.T) {
			for _, p := range paths {
				t.Run(p, func(t *testing.T) {
					for _, c := range byPath[p] {
						method, path, body := c.method, c.target, c.body
						sent++
						kinds[c.kind]++
						t.Run(c.kind, func(t *testing.T) {
							status, hdr, resp := ts.call(t, method, path, body)
							msg := sweepExceptionMessage(resp)
							where := fmt.Sprintf("%s %s %s\n  -> %d %s %s", method, path, body, status, hdr.Get("x-amzn-ErrorType"), resp)
							if status != http.StatusBadRequest {
								t.Errorf("status %d, want 400\n  %s", status, where)
							}
							if et := hdr.Get("x-amzn-ErrorType"); et != "ValidationException" {
								t.Errorf("x-amzn-ErrorType %q, want ValidationException\n  %s", et, where)
							}
							if msg == "" {
								t.Fatalf("no exceptionMessage\n  %s", where)
							}
							if !strings.Contains(msg, "'"+c.path+"'") {
								t.Errorf("exceptionMessage does not name '%s': %s\n  %s", c.path, msg, where)
							}
							if c.hint != "" && !strings.Contains(msg, c.hint) {
								t.Errorf("exceptionMessage does not say %q: %s\n  %s", c.hint, msg, where)
							}
						})
					}
				})
			}
		})
	}
	var ks []string
	for k, n := range kinds {
		ks = append(ks, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(ks)
	t.Logf("constraint sweep: %d operations, %d violations sent (%s), %d skipped", ops, sent, strings.Join(ks, " "), skipped)
	if sent < minSweepViolations {
		t.Errorf("only %d violations sent, want at least %d: the sweep is not reaching the model's constraints", sent, minSweepViolations)
	}
}

// TestModelBaselineRequestsPass sends each operation's valid baseline, with
// only the required members and with every member, and checks that no
// constraint is reported: the sweep's requests differ from these by exactly
// one violation. Other errors (404 for resources that do not exist, 501 for
// operations not built yet, semantic ValidationExceptions) are fine.
func TestModelBaselineRequestsPass(t *testing.T) {
	m := loadSweepModel(t)
	g := newSweepGen(t, m)
	ts := startServer(t, "")
	sent, edges := 0, 0
	for _, name := range m.opNames() {
		op := m.Operations[name]
		w := g.operationCases(op)
		var baselines [2]sweepCase
		for i, full := range []bool{false, true} {
			obj := map[string]any{}
			if op.Input != nil {
				obj = g.structValue(op.Input.Shape, 0, full)
			}
			baselines[i].kind = "required-only"
			if full {
				baselines[i].kind = "all-members"
			}
			baselines[i].method, baselines[i].target, baselines[i].body = g.request(op, obj)
		}
		t.Run(name, func(t *testing.T) {
			for _, c := range w.edges {
				t.Run("limit/"+c.name+"/"+c.kind, func(t *testing.T) {
					method, path, body := c.method, c.target, c.body
					status, hdr, resp := ts.call(t, method, path, body)
					sent++
					edges++
					msg := sweepExceptionMessage(resp)
					if status == http.StatusBadRequest && strings.Contains(msg, "failed to satisfy constraint") {
						t.Errorf("value at the limit rejected: %s %s %s\n  -> %d %s %s", method, path, body, status, hdr.Get("x-amzn-ErrorType"), resp)
					}
				})
			}
			for _, b := range baselines {
				t.Run(b.kind, func(t *testing.T) {
					method, path, body := b.method, b.target, b.body
					status, hdr, resp := ts.call(t, method, path, body)
					sent++
					msg := sweepExceptionMessage(resp)
					t.Logf("%s %s -> %d %s %s", method, path, status, hdr.Get("x-amzn-ErrorType"), msg)
					if status == http.StatusBadRequest && strings.Contains(msg, "failed to satisfy constraint") {
						t.Errorf("valid baseline rejected: %s %s %s\n  -> %d %s", method, path, body, status, resp)
					}
				})
			}
		})
	}
	t.Logf("baseline: %d operations, %d requests (%d of them with a value exactly at a limit)", len(m.Operations), sent, edges)
}
