package sigv4

import "net/http"

// Error codes returned by Verify. They are the values AWS services put in the
// X-Amzn-ErrorType header / "__type" field, so AWS SDKs map them to the same
// exception types they would see from the real service.
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	CodeIncompleteSignature        = "IncompleteSignatureException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeInvalidSignature           = "InvalidSignatureException"
)

// Error is an authentication failure, shaped like the error an AWS service
// answers with. Status is the HTTP status code to send (403 for every error
// Verify returns).
type Error struct {
	Code    string
	Message string
	Status  int
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorCode returns the AWS error code (e.g. "InvalidSignatureException").
func (e *Error) ErrorCode() string { return e.Code }

// ErrorMessage returns the human-readable message.
func (e *Error) ErrorMessage() string { return e.Message }

// HTTPStatusCode returns the HTTP status to answer with.
func (e *Error) HTTPStatusCode() int { return e.Status }

func newError(code, msg string) *Error {
	return &Error{Code: code, Message: msg, Status: http.StatusForbidden}
}

func errMissing() *Error {
	return newError(CodeMissingAuthenticationToken, "Missing Authentication Token")
}

func errIncomplete(msg string) *Error { return newError(CodeIncompleteSignature, msg) }

func errInvalid(msg string) *Error { return newError(CodeInvalidSignature, msg) }

func errUnrecognized() *Error {
	return newError(CodeUnrecognizedClient, "The security token included in the request is invalid.")
}

const msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

const msgPayloadMismatch = "The provided 'x-amz-content-sha256' header does not match what was computed: " +
	"the payload hash does not match the SHA-256 of the request body."

const msgUnsignedPayload = "This service does not accept unsigned payloads: sign the SHA-256 of the request body " +
	"(UNSIGNED-PAYLOAD and STREAMING-* are for Amazon S3 only), in the header and in presigned URLs alike."
