package apimodel

import "fmt"

// Error codes of the model's error shapes, with the HTTP status each carries.
const (
	ValidationException           = "ValidationException"
	AccessDeniedException         = "AccessDeniedException"
	PendingVerification           = "PendingVerification"
	ResourceNotFoundException     = "ResourceNotFoundException"
	ConflictException             = "ConflictException"
	ServiceQuotaExceededException = "ServiceQuotaExceededException"
	InternalServerException       = "InternalServerException"
	// NotImplementedException is not in the model: it answers operations
	// whose capability Rostrum does not have yet, so that clients see a clear
	// generic error instead of a success that pretends.
	NotImplementedException = "NotImplementedException"
)

// Error is an API error as the service reports it; the transport writes its
// Code in x-amzn-ErrorType and its Message as exceptionMessage.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Status is the HTTP status the model gives the error's shape.
func (e *Error) Status() int {
	if s, ok := Shapes[e.Code]; ok && s.ErrorStatus != 0 {
		return s.ErrorStatus
	}
	if e.Code == NotImplementedException {
		return 501
	}
	return 500
}

func newError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Errorf helpers, one per error shape.
func Validationf(format string, args ...any) *Error {
	return newError(ValidationException, format, args...)
}
func NotFoundf(format string, args ...any) *Error {
	return newError(ResourceNotFoundException, format, args...)
}
func Conflictf(format string, args ...any) *Error {
	return newError(ConflictException, format, args...)
}
func AccessDeniedf(format string, args ...any) *Error {
	return newError(AccessDeniedException, format, args...)
}
func QuotaExceededf(format string, args ...any) *Error {
	return newError(ServiceQuotaExceededException, format, args...)
}
func Internalf(format string, args ...any) *Error {
	return newError(InternalServerException, format, args...)
}
func NotImplementedf(format string, args ...any) *Error {
	return newError(NotImplementedException, format, args...)
}
