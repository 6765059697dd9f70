package dstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-go/sluice/internal/protocol"
)

// The reserved control routes, under the stream prefix (PROTOCOL.md 6, 7), as on the
// reference server:
//
//	GET    __ds/jwks.json                         webhook signing keys
//	PUT    __ds/subscriptions/{id}                create (201) or re-confirm (200)
//	GET    __ds/subscriptions/{id}                read
//	DELETE __ds/subscriptions/{id}                delete (204)
//	POST   __ds/subscriptions/{id}/streams        add explicit streams (204)
//	DELETE __ds/subscriptions/{id}/streams/{path} remove an explicit stream (204)
//	POST   __ds/subscriptions/{id}/claim          pull-wake: take the lease
//	POST   __ds/subscriptions/{id}/ack            pull-wake: ack, heartbeat, done
//	POST   __ds/subscriptions/{id}/release        pull-wake: give the lease back (204)
//	POST   __ds/subscriptions/{id}/callback       webhook: ack, heartbeat, done
//
// Every other path under __ds gets 404 SUBSCRIPTION_NOT_FOUND.

// maxControlBody is the largest subscription request body.
const maxControlBody = 16 << 20

// serveControl serves a reserved route; rest is the escaped path after the prefix.
func (h *Handler) serveControl(w *response, r *http.Request, rest string) {
	if rest == protocol.JWKSRoute {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		hd := w.Header()
		hd.Set(protocol.HeaderContentType, protocol.ContentTypeJWKSet)
		hd.Set("Cache-Control", "public, max-age=300")
		hd.Set("Content-Length", strconv.Itoa(len(h.subs.signer.jwks)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(h.subs.signer.jwks)
		}
		return
	}
	after, ok := strings.CutPrefix(rest, protocol.SubscriptionsRoute)
	if !ok {
		controlNotFound(w)
		return
	}
	parts := strings.Split(after, "/")
	id, err := url.PathUnescape(parts[0])
	if err != nil || id == "" {
		controlNotFound(w)
		return
	}
	tail := parts[1:]
	switch {
	case len(tail) == 0:
		switch r.Method {
		case http.MethodPut:
			h.serveCreateSubscription(w, r, id)
		case http.MethodGet:
			v := h.view(id)
			if v == nil {
				writeSubError(w, errNotFound)
				return
			}
			writeJSON(w, http.StatusOK, v)
		case http.MethodDelete:
			h.deleteSubscription(id)
			w.WriteHeader(http.StatusNoContent)
		default:
			methodNotAllowed(w, "GET, PUT, DELETE")
		}
	case tail[0] == protocol.SubscriptionStreams && len(tail) == 1:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		h.serveAddStreams(w, r, id)
	case tail[0] == protocol.SubscriptionStreams:
		if r.Method != http.MethodDelete {
			methodNotAllowed(w, "DELETE")
			return
		}
		p, err := url.PathUnescape(strings.Join(tail[1:], "/"))
		if err != nil {
			writeSubError(w, errorf(http.StatusBadRequest, protocol.CodeInvalidRequest, "the stream path is not URL-encoded properly"))
			return
		}
		if e := h.removeStream(id, normalizePath(p)); e != nil {
			writeSubError(w, e)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case len(tail) == 1 && (tail[0] == protocol.SubscriptionClaim || tail[0] == protocol.SubscriptionAck ||
		tail[0] == protocol.SubscriptionRelease || tail[0] == protocol.SubscriptionCallback):
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		switch tail[0] {
		case protocol.SubscriptionClaim:
			h.serveClaim(w, r, id)
		case protocol.SubscriptionAck:
			h.serveAck(w, r, id, actionAck)
		case protocol.SubscriptionRelease:
			h.serveAck(w, r, id, actionRelease)
		default:
			h.serveAck(w, r, id, actionCallback)
		}
	default:
		controlNotFound(w)
	}
}

func controlNotFound(w *response) {
	writeSubError(w, errorf(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "Durable Streams control route not found"))
}

func methodNotAllowed(w *response, allow string) {
	w.Header().Set("Allow", allow)
	httpError(w, http.StatusMethodNotAllowed, "method not allowed")
}

// writeJSON answers status with v as JSON.
func writeJSON(w *response, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	hd := w.Header()
	hd.Set(protocol.HeaderContentType, protocol.ContentTypeJSON)
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// errorBody is the body of a failed subscription request.
type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code          string `json:"code"`
	Message       string `json:"message,omitempty"`
	CurrentHolder string `json:"current_holder,omitempty"`
	Generation    *int64 `json:"generation,omitempty"`
}

func writeSubError(w *response, e *subError) {
	o := errorObject{Code: e.code, Message: e.message, CurrentHolder: e.holder}
	if e.code == protocol.CodeAlreadyClaimed {
		o.Generation = &e.gen
	}
	writeJSON(w, e.status, errorBody{o})
}

var errBadJSON = errorf(http.StatusBadRequest, protocol.CodeInvalidRequest, "invalid JSON body")

// readControlJSON reads a subscription request body into v; an empty body is {}.
func (h *Handler) readControlJSON(w *response, r *http.Request, v any) bool {
	limit := min(h.opts.MaxBodyBytes, maxControlBody)
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		bodyError(w, err)
		return false
	case int64(len(b)) > limit:
		bodyError(w, errBodyTooLarge)
		return false
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	if err := json.Unmarshal(b, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			msg := "the body must be a JSON object"
			if typeErr.Field != "" {
				msg = typeErr.Field + " has the wrong JSON type (" + typeErr.Value + ")"
			}
			writeSubError(w, errorf(http.StatusBadRequest, protocol.CodeInvalidRequest, msg))
			return false
		}
		writeSubError(w, errBadJSON)
		return false
	}
	return true
}

// baseURL returns the scheme and host a request came to.
func baseURL(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

func (h *Handler) serveCreateSubscription(w *response, r *http.Request, id string) {
	var raw map[string]json.RawMessage
	if !h.readControlJSON(w, r, &raw) {
		return
	}
	if raw == nil {
		writeSubError(w, errorf(http.StatusBadRequest, protocol.CodeInvalidRequest, "the body must be a JSON object"))
		return
	}
	cfg, msg := h.parseSubConfig(raw)
	if msg != "" {
		writeSubError(w, errorf(http.StatusBadRequest, protocol.CodeInvalidRequest, msg))
		return
	}
	sub, created, e := h.createSubscription(id, cfg, baseURL(r))
	if e != nil {
		writeSubError(w, e)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	h.subs.mu.Lock()
	v := h.viewLocked(sub)
	h.subs.mu.Unlock()
	writeJSON(w, status, v)
}

// stringField returns raw's field as a string, and whether it is one.
func stringField(raw map[string]json.RawMessage, name string) (string, bool) {
	var s string
	if v, ok := raw[name]; !ok || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// parseSubConfig validates a create request as the reference server does (a field of the
// wrong type that is optional counts as absent) and normalizes it. It returns what is wrong,
// or "".
func (h *Handler) parseSubConfig(raw map[string]json.RawMessage) (*subConfig, string) {
	var c subConfig
	c.typ, _ = stringField(raw, "type")
	if c.typ != protocol.SubscriptionWebhook && c.typ != protocol.SubscriptionPullWake {
		return nil, `type must be "webhook" or "pull-wake"`
	}
	if p, ok := stringField(raw, "pattern"); ok {
		c.pattern = normalizePath(p)
		if reservedPath(c.pattern) {
			return nil, "pattern must not match the reserved __ds paths"
		}
	}
	var streams []json.RawMessage
	if v, ok := raw["streams"]; ok && json.Unmarshal(v, &streams) == nil {
		for _, s := range streams {
			var p string
			if json.Unmarshal(s, &p) != nil {
				return nil, "streams must contain only strings"
			}
			if p = normalizePath(p); p == "" || reservedPath(p) {
				return nil, "streams must name application streams: " + strconv.Quote(p)
			}
			c.streams = append(c.streams, p)
		}
	}
	if len(c.streams) > h.opts.MaxExplicitStreams {
		return nil, "too many explicit streams: a subscription keeps at most " + strconv.Itoa(h.opts.MaxExplicitStreams) + " (Options.MaxExplicitStreams)"
	}
	c.streams = sortedUnique(c.streams)
	if c.pattern == "" && len(c.streams) == 0 {
		return nil, "at least one of pattern or streams is required"
	}
	minMS, maxMS := h.opts.MinLeaseTTL.Milliseconds(), h.opts.MaxLeaseTTL.Milliseconds()
	c.leaseTTL = h.opts.DefaultLeaseTTL.Milliseconds()
	if v, ok := raw["lease_ttl_ms"]; ok {
		var f float64
		if json.Unmarshal(v, &f) != nil || f != math.Trunc(f) || f < float64(minMS) || f > float64(maxMS) {
			return nil, "lease_ttl_ms must be an integer from " + strconv.FormatInt(minMS, 10) + " to " + strconv.FormatInt(maxMS, 10)
		}
		c.leaseTTL = int64(f)
	}
	if c.typ == protocol.SubscriptionWebhook {
		var wh map[string]json.RawMessage
		if v, ok := raw["webhook"]; ok {
			json.Unmarshal(v, &wh)
		}
		if c.webhookURL, _ = stringField(wh, "url"); c.webhookURL == "" {
			return nil, "webhook subscriptions require webhook.url"
		}
	}
	if ws, ok := stringField(raw, "wake_stream"); ok {
		c.wakeStream = normalizePath(ws)
		if reservedPath(c.wakeStream) {
			return nil, "wake_stream must name an application stream"
		}
	}
	if c.typ == protocol.SubscriptionPullWake && c.wakeStream == "" {
		return nil, "pull-wake subscriptions require wake_stream"
	}
	if d, ok := stringField(raw, "description"); ok {
		c.description = &d
	}
	return &c, ""
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(s)))
}

func (h *Handler) serveAddStreams(w *response, r *http.Request, id string) {
	var req struct {
		Streams []json.RawMessage `json:"streams"`
	}
	if !h.readControlJSON(w, r, &req) {
		return
	}
	bad := errorf(http.StatusBadRequest, protocol.CodeInvalidRequest, "streams must be a non-empty string array")
	if len(req.Streams) == 0 {
		writeSubError(w, bad)
		return
	}
	paths := make([]string, 0, len(req.Streams))
	for _, s := range req.Streams {
		var p string
		if json.Unmarshal(s, &p) != nil || p == "" {
			writeSubError(w, bad)
			return
		}
		if p = normalizePath(p); p == "" || reservedPath(p) {
			writeSubError(w, errorf(http.StatusBadRequest, protocol.CodeInvalidRequest, "streams must name application streams: "+strconv.Quote(p)))
			return
		}
		paths = append(paths, p)
	}
	if e := h.addStreams(id, paths); e != nil {
		writeSubError(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) serveClaim(w *response, r *http.Request, id string) {
	var req struct {
		Worker json.RawMessage `json:"worker"`
	}
	if !h.readControlJSON(w, r, &req) {
		return
	}
	var worker string
	if json.Unmarshal(req.Worker, &worker) != nil || worker == "" {
		writeSubError(w, errorf(http.StatusBadRequest, protocol.CodeInvalidRequest, "worker must be a non-empty string"))
		return
	}
	res, e := h.claim(id, worker)
	if e != nil {
		writeSubError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// ackResult is the body of a successful ack or callback.
type ackResult struct {
	OK       bool `json:"ok"`
	NextWake bool `json:"next_wake"`
}

func (h *Handler) serveAck(w *response, r *http.Request, id string, action ackAction) {
	token, ok := strings.CutPrefix(r.Header.Get(protocol.HeaderAuthorization), protocol.BearerPrefix)
	if !ok || token == "" {
		writeSubError(w, errorf(http.StatusUnauthorized, protocol.CodeTokenInvalid, "missing or malformed Authorization header"))
		return
	}
	var req ackRequest
	if !h.readControlJSON(w, r, &req) {
		return
	}
	next, e := h.ack(id, token, &req, action)
	switch {
	case e != nil:
		writeSubError(w, e)
	case action == actionRelease:
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusOK, ackResult{OK: true, NextWake: next})
	}
}
