package ivs

import (
	api "github.com/rostrum-dev/rostrum/internal/apimodel"
)

// notYet is the answer of an operation whose capability this server does
// not have: NotImplementedException (HTTP 501) rather than a success that
// pretends. Every operation of the model is built; a server without a media
// plane (a control-plane-only test setup) still answers this way for the
// operations that need one.
func notYet(op string) error {
	return api.NotImplementedf("%s is not available yet in this Rostrum server: it needs a capability that has not been built (see the README's list of operations).", op)
}
