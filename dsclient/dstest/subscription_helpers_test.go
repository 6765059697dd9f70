package dstest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// subHarness drives a Handler directly (no network, so that it works inside a synctest
// bubble) through the subscription routes.
type subHarness struct {
	t *testing.T
	h *Handler
}

func newSubHarness(t *testing.T, opts Options) *subHarness {
	t.Helper()
	h, err := NewHandler(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return &subHarness{t: t, h: h}
}

// do serves one request and returns the recorded response.
func (x *subHarness) do(method, target, body string, headers ...string) *httptest.ResponseRecorder {
	x.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	if !strings.HasPrefix(target, "/") {
		target = x.h.opts.Prefix + target
	}
	req := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	x.h.ServeHTTP(rec, req)
	return rec
}

// want serves one request, checks its status and returns its body.
func (x *subHarness) want(status int, method, target, body string, headers ...string) string {
	x.t.Helper()
	rec := x.do(method, target, body, headers...)
	if rec.Code != status {
		x.t.Fatalf("%s %s: status %d, want %d (%s)", method, target, rec.Code, status, rec.Body)
	}
	return rec.Body.String()
}

// wantError serves one request and checks its status and error code.
func (x *subHarness) wantError(status int, code, method, target, body string, headers ...string) errorObject {
	x.t.Helper()
	var e errorBody
	decode(x.t, x.want(status, method, target, body, headers...), &e)
	if e.Error.Code != code {
		x.t.Fatalf("%s %s: code %q, want %q", method, target, e.Error.Code, code)
	}
	return e.Error
}

func decode(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
}

func sub(id string) string { return "__ds/subscriptions/" + id }

// stream creates a JSON stream with an optional first body.
func (x *subHarness) stream(path, body string) {
	x.t.Helper()
	x.want(http.StatusCreated, "PUT", path, body, "Content-Type", "application/json")
}

// append appends a JSON body to a stream and returns the offset after it.
func (x *subHarness) append(path, body string) string {
	x.t.Helper()
	rec := x.do("POST", path, body, "Content-Type", "application/json")
	if rec.Code != http.StatusNoContent {
		x.t.Fatalf("append to %s: status %d (%s)", path, rec.Code, rec.Body)
	}
	return rec.Header().Get("Stream-Next-Offset")
}

// tail returns a stream's tail offset.
func (x *subHarness) tail(path string) string {
	x.t.Helper()
	return x.do("HEAD", path, "").Header().Get("Stream-Next-Offset")
}

// create creates a subscription and returns its view.
func (x *subHarness) create(id, config string) subscriptionView {
	x.t.Helper()
	var v subscriptionView
	decode(x.t, x.want(http.StatusCreated, "PUT", sub(id), config, "Content-Type", "application/json"), &v)
	return v
}

// get returns a subscription's view.
func (x *subHarness) get(id string) subscriptionView {
	x.t.Helper()
	var v subscriptionView
	decode(x.t, x.want(http.StatusOK, "GET", sub(id), ""), &v)
	return v
}

// acked returns the cursor of a subscription's stream, "" when it is not linked.
func (x *subHarness) acked(id, path string) string {
	x.t.Helper()
	for _, l := range x.get(id).Streams {
		if l.Path == path {
			return l.AckedOffset
		}
	}
	return ""
}

type claimed struct {
	WakeID     string       `json:"wake_id"`
	Generation int64        `json:"generation"`
	Token      string       `json:"token"`
	Streams    []streamInfo `json:"streams"`
	LeaseTTLMS int64        `json:"lease_ttl_ms"`
}

func (c *claimed) stream(t *testing.T, path string) streamInfo {
	t.Helper()
	for _, s := range c.Streams {
		if s.Path == path {
			return s
		}
	}
	t.Fatalf("claim has no stream %s: %+v", path, c.Streams)
	return streamInfo{}
}

// claim claims a pull-wake subscription.
func (x *subHarness) claim(id, worker string) claimed {
	x.t.Helper()
	var c claimed
	decode(x.t, x.want(http.StatusOK, "POST", sub(id)+"/claim", `{"worker":"`+worker+`"}`), &c)
	return c
}

// ackBody is the body of an ack, callback or release.
func ackBody(wakeID string, gen int64, done bool, acks ...string) string {
	type entry struct {
		Stream string `json:"stream"`
		Offset string `json:"offset"`
	}
	b := struct {
		WakeID     string  `json:"wake_id"`
		Generation int64   `json:"generation"`
		Acks       []entry `json:"acks,omitempty"`
		Done       bool    `json:"done,omitempty"`
	}{WakeID: wakeID, Generation: gen, Done: done}
	for i := 0; i+1 < len(acks); i += 2 {
		b.Acks = append(b.Acks, entry{acks[i], acks[i+1]})
	}
	out, _ := json.Marshal(b)
	return string(out)
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// ack acks through the pull-wake ack route and returns next_wake.
func (x *subHarness) ack(id string, c claimed, done bool, acks ...string) bool {
	x.t.Helper()
	var r ackResult
	decode(x.t, x.want(http.StatusOK, "POST", sub(id)+"/ack", ackBody(c.WakeID, c.Generation, done, acks...), bearer(c.Token)...), &r)
	if !r.OK {
		x.t.Fatalf("ack: ok is false")
	}
	return r.NextWake
}

// wakes returns the wake events in a JSON wake stream.
func (x *subHarness) wakes(path string) []wakeEvent {
	x.t.Helper()
	var evs []wakeEvent
	decode(x.t, x.want(http.StatusOK, "GET", path+"?offset=-1", ""), &evs)
	return evs
}
