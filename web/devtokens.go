package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/ivs"
)

// zeroTime makes http.ServeContent skip Last-Modified: embedded files have
// no modification time, their ETag says when they change.
var zeroTime time.Time

// devTokens is the development token endpoint, for the demo page in
// development mode. It calls the IVS service as the server's own account,
// without SigV4, and applies the API's input constraints:
//
//	GET  /dev/stages                 → {"stages": [StageSummary…]}
//	POST /dev/stages {"name"}        → {"stage": Stage}
//	POST /dev/tokens {"stageArn", "userId", "attributes", "capabilities", "duration"}
//	                                 → {"participantToken": ParticipantToken}
//
// Errors answer {"code": AWS error type, "message": …} with the API's status.
type devTokens struct {
	svc *ivs.Service
	log *slog.Logger
}

func (d *devTokens) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.URL.Path == "/dev/stages" && r.Method == http.MethodGet:
		out, err := d.svc.ListStages(r.Context(), &api.ListStagesRequest{MaxResults: api.Ptr(int32(100))})
		d.answer(w, out, err)
	case r.URL.Path == "/dev/stages" && r.Method == http.MethodPost:
		var in api.CreateStageRequest
		if !decode(w, r, "CreateStageRequest", &in) {
			return
		}
		out, err := d.svc.CreateStage(r.Context(), &in)
		if err == nil {
			d.log.Info("dev token endpoint: stage created", "stage", out.Stage.Arn)
		}
		d.answer(w, out, err)
	case r.URL.Path == "/dev/tokens" && r.Method == http.MethodPost:
		var in api.CreateParticipantTokenRequest
		if !decode(w, r, "CreateParticipantTokenRequest", &in) {
			return
		}
		if len(in.Capabilities) == 0 {
			in.Capabilities = []string{"PUBLISH", "SUBSCRIBE"}
		}
		out, err := d.svc.CreateParticipantToken(r.Context(), &in)
		if err == nil {
			d.log.Info("dev token endpoint: participant token minted", "stage", in.StageArn, "participant", api.Val(out.ParticipantToken.ParticipantId))
		}
		d.answer(w, out, err)
	case r.URL.Path == "/dev/stages" || r.URL.Path == "/dev/tokens":
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"code": "MethodNotAllowed", "message": "method not allowed"})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"code": "NotFound", "message": "the development token endpoint has /dev/stages and /dev/tokens"})
	}
}

// decode reads a JSON body and checks it against the API's input shape.
func decode(w http.ResponseWriter, r *http.Request, shape string, into any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"code": "ValidationException", "message": "could not read the body"})
		return false
	}
	obj := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"code": "ValidationException", "message": "the body must be a JSON object"})
			return false
		}
	}
	if vs := api.Validate(api.Shapes[shape], obj); len(vs) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"code": "ValidationException", "message": api.Message(vs)})
		return false
	}
	b, _ := json.Marshal(obj)
	if err := json.Unmarshal(b, into); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"code": "ValidationException", "message": err.Error()})
		return false
	}
	return true
}

func (d *devTokens) answer(w http.ResponseWriter, out any, err error) {
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			writeJSON(w, ae.Status(), map[string]string{"code": ae.Code, "message": ae.Message})
			return
		}
		d.log.Error("dev token endpoint", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"code": "InternalServerException", "message": "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
