package signal

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/stage"
)

// Link relations of IVS's WHIP/WHEP resources.
const (
	relSessionDelete = "urn:ietf:params:whip:ivs-stages:session-delete"
	relPlayback      = "urn:ietf:params:whep:core:playback-controls"
	relLayer         = "urn:ietf:params:whep:ext:core:layer"
)

// publish is WHIP: POST {whip_url}/publish/{participantId} from IVS's
// clients, or POST {whip_url} from OBS and other WHIP clients, whose
// participant is the token's.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request) {
	id, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if pid := r.PathValue("participant"); pid != "" && pid != id.Claims.ParticipantID {
		h.fail(w, r, fmt.Errorf("%w: the token is for participant %s, not %s", stage.ErrNotOwner, id.Claims.ParticipantID, pid))
		return
	}
	offer, ok := readOffer(w, r)
	if !ok {
		return
	}
	ctx, cancel := negotiationContext(r)
	defer cancel()
	res, answer, err := h.stages.Publish(ctx, id, clientInfo(r), offer)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.created(w, res, answer, relSessionDelete)
}

// subscribe is the WHEP-shaped POST {whip_url}/subscribe/{publisherId}.
func (h *Handler) subscribe(w http.ResponseWriter, r *http.Request) {
	id, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	offer, ok := readOffer(w, r)
	if !ok {
		return
	}
	ctx, cancel := negotiationContext(r)
	defer cancel()
	res, answer, err := h.stages.Subscribe(ctx, id, clientInfo(r), r.PathValue("publisher"), offer, r.Header.Get("X-Stages-Initial-Layer-Pref"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.created(w, res, answer, relSessionDelete, relPlayback, relLayer)
}

// created answers 201 with the resource's Location, its links and the SDP.
func (h *Handler) created(w http.ResponseWriter, res *stage.Resource, answer string, rels ...string) {
	base := resourcesPath + res.ID
	hd := w.Header()
	hd.Set("Location", base)
	hd.Set("ETag", `"`+res.ID+`"`)
	hd.Set("Content-Type", "application/sdp")
	for _, rel := range rels {
		path := map[string]string{relSessionDelete: "/session-delete", relPlayback: "/playback", relLayer: "/layers"}[rel]
		hd.Add("Link", fmt.Sprintf(`<%s%s>; rel="%s"`, base, path, rel))
	}
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (*stage.Identity, bool) {
	id, err := h.stages.Authenticate(r.Context(), bearer(r))
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return id, true
}

// resource finds the resource of the path, held by tok's participant.
func (h *Handler) resource(w http.ResponseWriter, r *http.Request, tok string) (*stage.Resource, bool) {
	res, err := h.stages.OwnedResource(r.Context(), r.PathValue("id"), tok)
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return res, true
}

func (h *Handler) deleteResource(w http.ResponseWriter, r *http.Request) {
	res, ok := h.resource(w, r, bearer(r))
	if !ok {
		return
	}
	res.Close()
	w.WriteHeader(http.StatusOK)
}

// patchResource: trickle ICE and ICE restarts are not supported; the answer
// carries every candidate (RFC 9725 lets a server answer 405).
func (h *Handler) patchResource(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "DELETE")
	writeError(w, http.StatusMethodNotAllowed, 2001, "trickle ICE is not supported: the answer carries all candidates")
}

// sessionDelete is the beacon IVS's web client sends on page unload:
// navigator.sendBeacon(link, JSON.stringify({authorization: token})).
func (h *Handler) sessionDelete(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Authorization string `json:"authorization"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, 2001, "the body must be {\"authorization\": token}")
		return
	}
	tok := body.Authorization
	if len(tok) > 7 && (tok[:7] == "Bearer " || tok[:7] == "bearer ") {
		tok = tok[7:]
	}
	res, ok := h.resource(w, r, tok)
	if !ok {
		return
	}
	res.Close()
	w.WriteHeader(http.StatusOK)
}

// getLayers is the WHEP layer extension: the simulcast encodings of each
// video section and which one is selected.
func (h *Handler) getLayers(w http.ResponseWriter, r *http.Request) {
	res, ok := h.resource(w, r, bearer(r))
	if !ok {
		return
	}
	byMid, err := res.Layers()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	type layers struct {
		MediaID string      `json:"mediaId"`
		Layers  []layerJSON `json:"layers"`
	}
	var out struct {
		Layers []layerJSON `json:"layers"`
		Media  []layers    `json:"media"`
	}
	out.Layers = []layerJSON{}
	for mid, ls := range byMid {
		m := layers{MediaID: mid, Layers: []layerJSON{}}
		for _, l := range ls {
			m.Layers = append(m.Layers, newLayerJSON(l))
		}
		out.Media = append(out.Media, m)
		out.Layers = append(out.Layers, m.Layers...)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// layerJSON is one layer as IVS's clients read it: bitrate in kbps (IVS's
// web client multiplies it by 1000 to get its bitrateBps).
type layerJSON struct {
	EncodingID      string  `json:"encodingId"`
	Bitrate         int     `json:"bitrate"`
	Width           int     `json:"width,omitempty"`
	Height          int     `json:"height,omitempty"`
	FramesPerSecond float64 `json:"framesPerSecond,omitempty"`
	Selected        bool    `json:"selected"`
}

func newLayerJSON(l sfu.LayerInfo) layerJSON {
	return layerJSON{EncodingID: l.EncodingID, Bitrate: (l.Bitrate + 500) / 1000, Width: l.Width, Height: l.Height,
		FramesPerSecond: l.FramesPerSecond, Selected: l.Selected}
}

// setLayer pins a layer ({"mediaId": mid, "encodingId": "hi"}) or, with an
// empty body object, returns to automatic selection.
func (h *Handler) setLayer(w http.ResponseWriter, r *http.Request) {
	res, ok := h.resource(w, r, bearer(r))
	if !ok {
		return
	}
	var body struct {
		MediaID    string `json:"mediaId"`
		EncodingID string `json:"encodingId"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&body); err != nil && err != io.EOF {
		writeError(w, http.StatusBadRequest, 2001, "the body must be JSON")
		return
	}
	if err := res.SetLayer(body.MediaID, body.EncodingID); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// playback is the WHEP playback-control link: {"pause": [mid…]} or
// {"play": [mid…]}.
func (h *Handler) playback(w http.ResponseWriter, r *http.Request) {
	res, ok := h.resource(w, r, bearer(r))
	if !ok {
		return
	}
	var body struct {
		Pause []string `json:"pause"`
		Play  []string `json:"play"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, 2001, "the body must be {\"pause\": [mid]} or {\"play\": [mid]}")
		return
	}
	if err := res.Playback(body.Pause, body.Play); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
