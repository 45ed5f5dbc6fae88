package apimodel

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Violation is one broken input constraint, located by a path in AWS's
// notation (list elements as "name.1.member", 1-based).
type Violation struct {
	Path    string
	Value   any // nil for a missing member
	Message string
}

func (v Violation) String() string {
	if v.Value == nil {
		return fmt.Sprintf("Value null at '%s' failed to satisfy constraint: %s", v.Path, v.Message)
	}
	return fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: %s", displayValue(v.Value), v.Path, v.Message)
}

func displayValue(v any) string {
	switch x := v.(type) {
	case string:
		if utf8.RuneCountInString(x) > 256 {
			return string([]rune(x)[:256]) + "..."
		}
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		return fmt.Sprintf("[%d items]", len(x))
	case map[string]any:
		return fmt.Sprintf("{%d members}", len(x))
	}
	return fmt.Sprint(v)
}

// Message joins violations the way AWS services word a ValidationException.
func Message(vs []Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	noun := "errors"
	if len(vs) == 1 {
		noun = "error"
	}
	return fmt.Sprintf("%d validation %s detected: %s", len(vs), noun, strings.Join(parts, "; "))
}

// sensitiveValue hides the value of sensitive members in messages.
const sensitiveValue = "***"

// Validate checks a decoded JSON value (decoded with UseNumber) against a
// structure shape and returns every violation found, in member order.
func Validate(s *Shape, v map[string]any) []Violation {
	var out []Violation
	validateStruct(s, v, "", &out)
	return out
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func validateStruct(s *Shape, obj map[string]any, path string, out *[]Violation) {
	for _, m := range s.Members {
		if m.Location == "header" {
			continue
		}
		v, ok := obj[m.Name]
		p := join(path, m.Name)
		if !ok || v == nil {
			if m.Required {
				*out = append(*out, Violation{Path: p, Message: "Member must not be null"})
			}
			continue
		}
		validateValue(m.Shape, v, p, out)
	}
}

func validateValue(s *Shape, v any, path string, out *[]Violation) {
	bad := func(msg string) {
		val := v
		if s.Sensitive {
			val = sensitiveValue
		}
		*out = append(*out, Violation{Path: path, Value: val, Message: msg})
	}
	switch s.Kind {
	case KindStructure:
		obj, ok := v.(map[string]any)
		if !ok {
			bad("Member must be an object")
			return
		}
		validateStruct(s, obj, path, out)
	case KindList:
		arr, ok := v.([]any)
		if !ok {
			bad("Member must be a list")
			return
		}
		checkLength(s, len(arr), bad)
		for i, e := range arr {
			ep := fmt.Sprintf("%s.%d.member", path, i+1)
			if e == nil {
				*out = append(*out, Violation{Path: ep, Message: "Member must not be null"})
				continue
			}
			validateValue(s.Member, e, ep, out)
		}
	case KindMap:
		obj, ok := v.(map[string]any)
		if !ok {
			bad("Member must be a map")
			return
		}
		checkLength(s, len(obj), bad)
		for _, k := range sortedMapKeys(obj) {
			var kv []Violation
			validateValue(s.Key, k, path, &kv)
			for _, x := range kv {
				x.Message = "Map keys must satisfy constraint: [" + x.Message + "]"
				*out = append(*out, x)
			}
			if obj[k] == nil {
				*out = append(*out, Violation{Path: path + "." + k, Message: "Map value must not be null"})
				continue
			}
			validateValue(s.Value, obj[k], path+"."+k, out)
		}
	case KindString:
		str, ok := v.(string)
		if !ok {
			bad("Member must be a string")
			return
		}
		checkLength(s, utf8.RuneCountInString(str), bad)
		if s.Pattern != nil && !s.Pattern.MatchString(str) {
			bad("Member must satisfy regular expression pattern: " + s.PatternSource)
		}
		if len(s.Enum) > 0 && !contains(s.Enum, str) {
			bad("Member must satisfy enum value set: [" + strings.Join(s.Enum, ", ") + "]")
		}
	case KindInteger, KindLong:
		n, ok := v.(json.Number)
		if !ok {
			bad("Member must be a number")
			return
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || (s.Kind == KindInteger && (i > math.MaxInt32 || i < math.MinInt32)) {
			bad("Member must be an integer")
			return
		}
		checkRange(s, float64(i), bad)
	case KindFloat, KindDouble:
		n, ok := v.(json.Number)
		if !ok {
			bad("Member must be a number")
			return
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			bad("Member must be a number")
			return
		}
		checkRange(s, f, bad)
	case KindBoolean:
		if _, ok := v.(bool); !ok {
			bad("Member must be a boolean")
		}
	case KindTimestamp:
		str, ok := v.(string)
		if !ok {
			bad("Member must be an ISO 8601 timestamp")
			return
		}
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			bad("Member must be an ISO 8601 timestamp")
		}
	}
}

func checkLength(s *Shape, n int, bad func(string)) {
	if s.HasMin && float64(n) < s.Min {
		bad(fmt.Sprintf("Member must have length greater than or equal to %v", s.Min))
	}
	if s.HasMax && float64(n) > s.Max {
		bad(fmt.Sprintf("Member must have length less than or equal to %v", s.Max))
	}
}

func checkRange(s *Shape, f float64, bad func(string)) {
	if s.HasMin && f < s.Min {
		bad(fmt.Sprintf("Member must have value greater than or equal to %v", s.Min))
	}
	if s.HasMax && f > s.Max {
		bad(fmt.Sprintf("Member must have value less than or equal to %v", s.Max))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
