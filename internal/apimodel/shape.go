// Package apimodel is the ivs-realtime API as data: its shapes with their
// constraints, its operations, and typed request and response structs, all
// generated from the botocore model by ./gen. The transport validates and
// decodes requests with it; the IVS service implements its Service interface.
package apimodel

//go:generate go run ./gen -model ../../../shared/api/ivs-realtime/service-2.json -out zz_generated.go -enums zz_enums.go

import (
	"errors"
	"regexp"
)

// Kind is the type of a shape, as the model names it.
type Kind uint8

const (
	KindString Kind = iota + 1
	KindInteger
	KindLong
	KindFloat
	KindDouble
	KindBoolean
	KindTimestamp
	KindList
	KindMap
	KindStructure
)

// Shape is one named shape of the model with the constraints that requests
// are validated against.
type Shape struct {
	Name          string
	Kind          Kind
	HasMin        bool
	Min           float64
	HasMax        bool
	Max           float64
	Pattern       *regexp.Regexp // anchored: the whole value must match
	PatternSource string         // as the model writes it, for messages
	Enum          []string
	Sensitive     bool
	ErrorStatus   int // HTTP status of an error shape, else 0

	Members []*Member // structures, sorted by name
	Member  *Shape    // lists
	Key     *Shape    // maps
	Value   *Shape    // maps
}

// Member is one member of a structure shape.
type Member struct {
	Name             string
	Shape            *Shape
	Required         bool
	Location         string // "", "uri", "querystring" or "header"
	LocationName     string
	IdempotencyToken bool
}

// Operation is one operation of the API and how it is reached over HTTP.
type Operation struct {
	Name       string
	Method     string
	RequestURI string
	Input      string
	Output     string
	Errors     []string // error shape names the operation declares, sorted
}

// DeclaresError reports whether the operation lists the named error shape;
// AWS SDKs only decode errors an operation declares.
func (o *Operation) DeclaresError(name string) bool {
	for _, e := range o.Errors {
		if e == name {
			return true
		}
	}
	return false
}

var errUnknownOperation = errors.New("apimodel: unknown operation")
