// Package awsapi speaks the AWS restJson1 protocol of the ivs-realtime API:
// it routes requests by method and path, verifies SigV4, validates input
// against the model's constraints, calls the service and encodes its answer
// or error exactly as AWS's clients expect.
package awsapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/sigv4"
)

// maxBodyBytes bounds a request body; the largest valid input (12 token
// configurations with 1 KB of attributes, 50 tags) is far below it.
const maxBodyBytes = 1 << 20

// Handler serves the API.
type Handler struct {
	svc      api.Service
	verifier *sigv4.Verifier
	log      *slog.Logger
	rpc      map[string]*api.Operation // POST /{Name} operations
	tags     map[string]*api.Operation // method → /tags/{resourceArn} operation

	// Observer, if set, is told of every answered request (metrics).
	Observer Observer
}

// Observer is told of each answered request: the operation's name
// ("unknown" when none matched), the HTTP status, the error type
// (x-amzn-ErrorType; empty on success) and how long it took.
type Observer interface {
	ObserveRequest(operation string, status int, errorType string, d time.Duration)
}

// New returns a handler that serves svc and accepts requests signed with
// the verifier's credentials.
func New(svc api.Service, verifier *sigv4.Verifier, log *slog.Logger) *Handler {
	h := &Handler{svc: svc, verifier: verifier, log: log, rpc: map[string]*api.Operation{}, tags: map[string]*api.Operation{}}
	for _, op := range api.Operations {
		if strings.HasPrefix(op.RequestURI, "/tags/") {
			h.tags[op.Method] = op
		} else {
			h.rpc[strings.TrimPrefix(op.RequestURI, "/")] = op
		}
	}
	return h
}

// Handles reports whether the request is for this API, so that a server
// that also serves media endpoints can route to it.
func (h *Handler) Handles(r *http.Request) bool {
	op, _ := h.route(r)
	return op != nil
}

// route finds the operation of a request and its URI label, if any.
func (h *Handler) route(r *http.Request) (*api.Operation, string) {
	path := r.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(path, "/tags/"); ok {
		op := h.tags[r.Method]
		if op == nil || rest == "" || strings.Contains(rest, "/") {
			return nil, ""
		}
		// SDKs escape the whole ARN (":" and "/" too); unescape the label
		// only after splitting the escaped path.
		arn, err := url.PathUnescape(rest)
		if err != nil {
			return nil, ""
		}
		return op, arn
	}
	if op := h.rpc[strings.TrimPrefix(path, "/")]; op != nil && r.Method == op.Method {
		return op, ""
	}
	return nil, ""
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := newRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	setCORS(w.Header(), r)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		return
	}
	op, label := h.route(r)
	name := "unknown"
	if op != nil {
		name = op.Name
	}
	status, err := h.serve(w, r, op, label)
	level := slog.LevelDebug
	if status == http.StatusInternalServerError {
		level = slog.LevelError
	}
	took := time.Since(start)
	if h.Observer != nil {
		h.Observer.ObserveRequest(name, status, w.Header().Get("x-amzn-ErrorType"), took)
	}
	attrs := []any{"op", name, "status", status, "request_id", reqID, "duration", took}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	h.log.Log(r.Context(), level, "api request", attrs...)
}

// serve handles one request and returns the status it wrote.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, op *api.Operation, label string) (int, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		// The server's read timeout cut a body that came too slowly.
		e := &api.Error{Code: "RequestTimeoutException", Message: "The request body was not received in time."}
		return writeErrorStatus(w, e, http.StatusRequestTimeout), e
	}
	if err != nil {
		return writeError(w, api.Validationf("Could not read the request body: %v", err)), err
	}
	if len(body) > maxBodyBytes {
		e := &api.Error{Code: "RequestEntityTooLargeException", Message: "The request body is larger than 1 MiB."}
		return writeErrorStatus(w, e, http.StatusRequestEntityTooLarge), e
	}
	// Authenticate before saying anything about the request, as AWS does.
	principal, err := h.verifier.Verify(r, body)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return writeErrorStatus(w, &api.Error{Code: se.Code, Message: se.Message}, se.Status), err
		}
		return writeErrorStatus(w, &api.Error{Code: "InvalidSignatureException", Message: err.Error()}, http.StatusForbidden), err
	}
	if op == nil {
		e := &api.Error{Code: "UnknownOperationException", Message: "No operation matches " + r.Method + " " + r.URL.EscapedPath() + "."}
		return writeErrorStatus(w, e, http.StatusNotFound), e
	}
	input, aerr := decodeInput(op, r, label, body)
	if aerr != nil {
		return writeError(w, aerr), aerr
	}
	ctx := ivs.WithAccount(r.Context(), principal.AccountID)
	out, err := dispatch(ctx, h.svc, op, input)
	if err != nil {
		var ae *api.Error
		if !errors.As(err, &ae) {
			h.log.ErrorContext(ctx, "unexpected service error", "op", op.Name, "err", err)
			ae = api.Internalf("Unexpected error during processing of request.")
		}
		return writeError(w, ae), err
	}
	buf, err := json.Marshal(out)
	if err != nil {
		return writeError(w, api.Internalf("Unexpected error during processing of request.")), err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(buf)
	return http.StatusOK, nil
}

// dispatch calls the service, turning a panic in it into an internal error
// so that one bad request never takes the server down.
func dispatch(ctx context.Context, svc api.Service, op *api.Operation, input []byte) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errors.New("panic in " + op.Name + ": " + panicString(p))
		}
	}()
	return api.Dispatch(ctx, svc, op.Name, input)
}

func panicString(p any) string {
	if e, ok := p.(error); ok {
		return e.Error()
	}
	if s, ok := p.(string); ok {
		return s
	}
	return "non-error panic"
}

// decodeInput parses the JSON body, adds the members carried in the path and
// query, validates everything against the operation's input shape and
// returns the input as JSON for the typed decoder.
func decodeInput(op *api.Operation, r *http.Request, label string, body []byte) ([]byte, *api.Error) {
	obj := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, api.Validationf("Could not parse the request body as JSON: %v", err)
		}
		if dec.More() {
			return nil, api.Validationf("Could not parse the request body as JSON: unexpected data after the top-level value.")
		}
		m, ok := v.(map[string]any)
		if !ok && v != nil {
			return nil, api.Validationf("The request body must be a JSON object.")
		}
		if m != nil {
			obj = m
		}
	}
	shape := api.Shapes[op.Input]
	query := r.URL.Query()
	for _, m := range shape.Members {
		switch m.Location {
		case "uri":
			obj[m.Name] = label
		case "querystring":
			if vals, ok := query[m.LocationName]; ok {
				if m.Shape.Kind == api.KindList {
					list := make([]any, len(vals))
					for i, v := range vals {
						list[i] = v
					}
					obj[m.Name] = list
				} else {
					obj[m.Name] = vals[0]
				}
			} else {
				delete(obj, m.Name)
			}
		}
	}
	if vs := api.Validate(shape, obj); len(vs) > 0 {
		return nil, api.Validationf("%s", api.Message(vs))
	}
	buf, err := json.Marshal(obj)
	if err != nil {
		return nil, api.Validationf("Could not encode the request: %v", err)
	}
	return buf, nil
}

// writeError writes a service error with its model status. AWS SDKs decode
// only the errors an operation declares, so the service answers each
// operation with its declared errors; anything else still reaches the caller
// as a generic error whose message says what happened.
func writeError(w http.ResponseWriter, e *api.Error) int {
	return writeErrorStatus(w, e, e.Status())
}

func writeErrorStatus(w http.ResponseWriter, e *api.Error, status int) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-ErrorType", e.Code)
	w.WriteHeader(status)
	// exceptionMessage is the modeled member; message lets generic error
	// decoders (and humans with curl) see the text too.
	buf, _ := json.Marshal(map[string]string{"exceptionMessage": e.Message, "message": e.Message})
	w.Write(buf)
	return status
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// setCORS lets browser apps call the API with the JS SDK, as the model's
// @cors trait describes; every call is still SigV4-authenticated.
func setCORS(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "x-amzn-errortype,x-amzn-requestid,x-amzn-errormessage,x-amzn-trace-id,x-amz-apigw-id,date")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET,POST,DELETE,OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Amz-Content-Sha256,X-Amz-User-Agent,X-Api-Key,amz-sdk-invocation-id,amz-sdk-request")
		h.Set("Access-Control-Max-Age", "600")
	}
}
