package apimodel

import "sort"

func sortedMapKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Ptr returns a pointer to v, for the optional members of generated structs.
func Ptr[T any](v T) *T { return &v }

// Val returns *p, or the zero value when p is nil.
func Val[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
