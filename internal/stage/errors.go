package stage

import "errors"

// The stage's answers to a refused request. They say what went wrong in
// the stage's terms; each transport (internal/signal) owns the one table
// from them to its wire (HTTP status, IVS's JSON error code, JOIN_ERROR
// code). Errors are wrapped with details a developer can act on:
// errors.Is finds the kind, Error() is the message.
var (
	ErrTokenMissing   = errors.New("a participant token is required")
	ErrTokenInvalid   = errors.New("the participant token is not valid")
	ErrTokenSignature = errors.New("the participant token is not signed by a key this stage trusts")
	ErrTokenExpired   = errors.New("the participant token has expired")
	// ErrStageDeleted: the token's stage does not exist (or was deleted).
	ErrStageDeleted = errors.New("the stage does not exist")
	// ErrDisconnected: DisconnectParticipant removed the participant for
	// good.
	ErrDisconnected = errors.New("the participant was disconnected from the stage")
	// ErrNotAllowed: the token lacks the capability (publish, subscribe).
	ErrNotAllowed = errors.New("the participant token does not allow this")
	// ErrNotOwner: the token is not the participant the request names.
	ErrNotOwner = errors.New("the token is not this participant's")
	// ErrStageFull: the stage's publisher or subscriber quota is reached.
	ErrStageFull         = errors.New("the stage is at capacity")
	ErrPublisherNotFound = errors.New("the participant is not publishing on this stage")
	ErrUnknownResource   = errors.New("no such resource")
	ErrNotSubscription   = errors.New("this resource is not a subscription")
	// ErrBadOffer: the client's SDP offer cannot be answered as it is.
	ErrBadOffer        = errors.New("the SDP offer cannot be answered")
	ErrNoMatchingCodec = errors.New("no codec of the offer is supported (Opus, H.264 constrained baseline with packetization-mode 1, VP8)")
	// ErrBadRequest: a control request names media the resource does not
	// have.
	ErrBadRequest = errors.New("bad request")
	// ErrThrottled: the participant connects faster than the stage allows.
	ErrThrottled = errors.New("too many connections for this participant")
	// ErrTimeout: the media negotiation did not finish in time.
	ErrTimeout = errors.New("the media negotiation timed out")
	// ErrUnavailable: the media plane is shutting down.
	ErrUnavailable = errors.New("the media plane is shutting down")
	// ErrInternal: the server failed (a store error, an engine bug); the
	// client learns nothing more, the transport logs the details.
	ErrInternal = errors.New("internal error")
)
