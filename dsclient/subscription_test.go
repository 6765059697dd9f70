package dsclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
)

func TestSubscriptionConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    ds.SubscriptionConfig
		fields []string
	}{
		{"pull-wake implied", ds.SubscriptionConfig{Pattern: "events/*", WakeStream: "wake"}, nil},
		{"webhook implied", ds.SubscriptionConfig{Streams: []string{"a", "b/c"}, WebhookURL: "https://h/hook", LeaseTTL: time.Minute}, nil},
		{"explicit type", ds.SubscriptionConfig{Type: ds.SubscriptionPullWake, Pattern: "**", WakeStream: "w", LeaseTTL: 1500 * time.Millisecond}, nil},
		{"empty", ds.SubscriptionConfig{}, []string{"SubscriptionConfig.Type", "SubscriptionConfig.Pattern"}},
		{"both deliveries", ds.SubscriptionConfig{Pattern: "e/*", WakeStream: "w", WebhookURL: "https://h"},
			[]string{"SubscriptionConfig.Type"}},
		{"unknown type", ds.SubscriptionConfig{Type: "push", Pattern: "e/*"}, []string{"SubscriptionConfig.Type"}},
		{"everything wrong", ds.SubscriptionConfig{Type: ds.SubscriptionPullWake, Pattern: "/", Streams: []string{"ok", "", "__ds/x"},
			WebhookURL: "https://h", WakeStream: "", LeaseTTL: 500 * time.Millisecond},
			[]string{"SubscriptionConfig.Pattern", "SubscriptionConfig.Streams[1]", "SubscriptionConfig.Streams[2]",
				"SubscriptionConfig.WebhookURL", "SubscriptionConfig.WakeStream", "SubscriptionConfig.LeaseTTL"}},
		{"webhook with wake stream", ds.SubscriptionConfig{Type: ds.SubscriptionWebhook, Pattern: "e/*", WebhookURL: "hook", WakeStream: "w"},
			[]string{"SubscriptionConfig.WebhookURL", "SubscriptionConfig.WakeStream"}},
		{"lease too long", ds.SubscriptionConfig{Pattern: "e", WakeStream: "__ds", LeaseTTL: 11 * time.Minute},
			[]string{"SubscriptionConfig.WakeStream", "SubscriptionConfig.LeaseTTL"}},
		{"lease not whole ms", ds.SubscriptionConfig{Pattern: "e", WakeStream: "w", LeaseTTL: time.Second + time.Microsecond},
			[]string{"SubscriptionConfig.LeaseTTL"}},
	} {
		checkFields(t, tc.name, tc.cfg.Validate(), tc.fields)
	}
}

// controlServer answers every request with status and body, recording requests.
type controlServer struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []*http.Request
	bodies []string
	status int
	body   string
}

func newControlServer(t *testing.T, status int, body string) *controlServer {
	cs := &controlServer{status: status, body: body}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		cs.mu.Lock()
		cs.reqs = append(cs.reqs, r)
		cs.bodies = append(cs.bodies, string(b))
		status, body := cs.status, cs.body
		cs.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(cs.Close)
	return cs
}

func (cs *controlServer) set(status int, body string) {
	cs.mu.Lock()
	cs.status, cs.body = status, body
	cs.mu.Unlock()
}

func (cs *controlServer) last() (*http.Request, string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.reqs[len(cs.reqs)-1], cs.bodies[len(cs.bodies)-1]
}

func (cs *controlServer) count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.reqs)
}

const claimAnswer = `{"wake_id":"w_1","generation":4,"token":"tok-secret","lease_ttl_ms":2000,"streams":[` +
	`{"path":"a b/c","link_type":"glob","acked_offset":"-1","tail_offset":"0_2","has_pending":true},` +
	`{"path":"d","link_type":"explicit","acked_offset":"0_5","tail_offset":"0_5","has_pending":false}]}`

// Requests as the protocol writes them: routes, escaping, the root's query, bodies and the
// claim token as a bearer token.
func TestSubscriptionRequests(t *testing.T) {
	cs := newControlServer(t, http.StatusCreated, `{"id":"s 1/x","type":"pull-wake","pattern":"e/*","streams":[],"wake_stream":"w","lease_ttl_ms":30000,"created_at":"2026-05-09T00:00:00.000Z","status":"active","description":null}`)
	ctx := context.Background()
	sub := ds.NewSubscription(cs.URL+"/v1/stream?tenant=t1", "s 1/x", ds.WithHeader("Authorization", "Bearer service"))
	if sub.URL() != cs.URL+"/v1/stream/__ds/subscriptions/s%201%2Fx" || sub.Root() != cs.URL+"/v1/stream/" {
		t.Fatalf("URL %s root %s", sub.URL(), sub.Root())
	}
	if u := sub.Stream("a b/c").URL(); u != cs.URL+"/v1/stream/a%20b/c" {
		t.Fatalf("stream URL %s", u)
	}
	if u := sub.JWKS().URL(); u != cs.URL+"/v1/stream/__ds/jwks.json?tenant=t1" {
		t.Fatalf("JWKS URL %s", u)
	}

	info, created, err := sub.Create(ctx, ds.SubscriptionConfig{Pattern: "e/*", WakeStream: "w"})
	if err != nil || !created || info.ID != "s 1/x" || info.CreatedAt.IsZero() || info.LeaseTTL != 30*time.Second {
		t.Fatalf("create: %+v %v %v", info, created, err)
	}
	req, body := cs.last()
	if req.Method != http.MethodPut || req.URL.EscapedPath() != "/v1/stream/__ds/subscriptions/s%201%2Fx" || req.URL.RawQuery != "tenant=t1" ||
		req.Header.Get("Authorization") != "Bearer service" || req.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("create request: %s %s?%s %v", req.Method, req.URL.EscapedPath(), req.URL.RawQuery, req.Header)
	}
	var sent map[string]any
	json.Unmarshal([]byte(body), &sent)
	if sent["type"] != "pull-wake" || sent["pattern"] != "e/*" || sent["wake_stream"] != "w" || sent["lease_ttl_ms"] != 30000.0 || len(sent) != 4 {
		t.Fatalf("create body: %s", body)
	}

	cs.set(http.StatusNoContent, "")
	if err := sub.RemoveStream(ctx, "a b/c"); err != nil {
		t.Fatal(err)
	}
	if req, _ := cs.last(); req.Method != http.MethodDelete || req.URL.EscapedPath() != "/v1/stream/__ds/subscriptions/s%201%2Fx/streams/a%20b/c" {
		t.Fatalf("remove: %s %s", req.Method, req.URL.EscapedPath())
	}
	if err := sub.AddStreams(ctx, "x", "y/z"); err != nil {
		t.Fatal(err)
	}
	if req, body := cs.last(); req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/streams") || body != `{"streams":["x","y/z"]}` {
		t.Fatalf("add: %s %s %s", req.Method, req.URL.Path, body)
	}

	cs.set(http.StatusOK, claimAnswer)
	before := time.Now()
	c, err := sub.Claim(ctx, "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	if req, body := cs.last(); req.Header.Get("Authorization") != "Bearer service" || body != `{"worker":"worker-1"}` {
		t.Fatalf("claim: %v %s", req.Header, body)
	}
	if c.WakeID() != "w_1" || c.Generation() != 4 || c.LeaseTTL() != 2*time.Second || len(c.Streams()) != 2 ||
		len(c.Pending()) != 1 || c.Pending()[0].Path != "a b/c" || c.Subscription() != sub {
		t.Fatalf("claim: %+v", c)
	}
	if d := c.Deadline(); d.Before(before.Add(2*time.Second)) || d.After(time.Now().Add(2*time.Second)) {
		t.Fatalf("deadline %s", d)
	}
	cs.set(http.StatusOK, `{"ok":true,"next_wake":true}`)
	res, err := c.Ack(ctx, []ds.StreamAck{{Stream: "a b/c", Offset: "0_2"}}, true)
	if err != nil || !res.NextWake {
		t.Fatalf("ack: %+v %v", res, err)
	}
	req, body = cs.last()
	if req.Header.Get("Authorization") != "Bearer tok-secret" || !strings.HasSuffix(req.URL.Path, "/ack") ||
		body != `{"wake_id":"w_1","generation":4,"acks":[{"stream":"a b/c","offset":"0_2"}],"done":true}` {
		t.Fatalf("ack request: %v %s %s", req.Header, req.URL.Path, body)
	}
	cs.set(http.StatusNoContent, "")
	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if req, body := cs.last(); !strings.HasSuffix(req.URL.Path, "/release") || body != `{"wake_id":"w_1","generation":4}` {
		t.Fatalf("release: %s %s", req.URL.Path, body)
	}
}

// Error bodies become kinds and a SubscriptionError, read from the whole body (not from the
// error's one-line detail, which is cut at 200 characters); credentials never show.
func TestSubscriptionErrors(t *testing.T) {
	holder := "worker " + strings.Repeat("x", 300) + "  two  spaces"
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": "ALREADY_CLAIMED", "current_holder": holder, "generation": 12}})
	cs := newControlServer(t, http.StatusConflict, string(b))
	ctx := context.Background()
	root := strings.Replace(cs.URL, "http://", "http://user:hunter2@", 1) + "/v1/stream/"
	sub := ds.NewSubscription(root, "s1", fastRetry())
	_, err := sub.Claim(ctx, "w")
	se := subErr(t, err, ds.ErrAlreadyClaimed, "ALREADY_CLAIMED")
	if se.Holder != holder || se.Generation != 12 {
		t.Fatalf("holder %q generation %d", se.Holder, se.Generation)
	}
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "/__ds/subscriptions/s1/claim") {
		t.Fatalf("error message: %v", err)
	}

	cs.set(http.StatusOK, claimAnswer)
	c, err := sub.Claim(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status int
		body   string
		kind   error
		code   string
	}{
		{409, `{"error":{"code":"FENCED","message":"Wake generation is stale"}}`, ds.ErrFenced, "FENCED"},
		{409, `{"error":{"code":"INVALID_OFFSET","message":"Ack offset is beyond stream tail"}}`, ds.ErrInvalidAck, "INVALID_OFFSET"},
		{404, `{"error":{"code":"SUBSCRIPTION_NOT_FOUND"}}`, ds.ErrSubscriptionNotFound, "SUBSCRIPTION_NOT_FOUND"},
		{401, `{"error":{"code":"TOKEN_EXPIRED","message":"Token expired"}}`, ds.ErrUnauthorized, "TOKEN_EXPIRED"},
		{409, `{"error":{"code":"SOMETHING_NEW"}}`, ds.ErrConflict, "SOMETHING_NEW"},
	} {
		cs.set(tc.status, tc.body)
		_, err := c.Ack(ctx, nil, false)
		subErr(t, err, tc.kind, tc.code)
		if strings.Contains(err.Error(), "tok-secret") || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("a secret in the error: %v", err)
		}
	}
	cs.set(http.StatusConflict, "not json")
	if _, err := c.Ack(ctx, nil, false); !errors.Is(err, ds.ErrConflict) || errors.Is(err, ds.ErrFenced) || !strings.Contains(err.Error(), "not json") {
		t.Fatalf("a body that is not JSON: %v", err)
	}
	cs.set(http.StatusOK, "{")
	if _, err := c.Ack(ctx, nil, false); !errors.Is(err, ds.ErrParse) {
		t.Fatalf("a malformed answer: %v", err)
	}

	// Retries: a heartbeat is retried on a 500, a claim and an ack with done are not.
	cs.set(http.StatusInternalServerError, `{"error":{"code":"INTERNAL"}}`)
	for _, tc := range []struct {
		name string
		op   func() error
		want int
	}{
		{"heartbeat", func() error { _, err := c.Ack(ctx, nil, false); return err }, 6},
		{"done", func() error { _, err := c.Ack(ctx, nil, true); return err }, 1},
		{"claim", func() error { _, err := sub.Claim(ctx, "w"); return err }, 1},
		{"release", func() error { return c.Release(ctx) }, 1},
		{"get", func() error { _, err := sub.Get(ctx); return err }, 6},
	} {
		n := cs.count()
		err := tc.op()
		if !errors.Is(err, ds.ErrServerError) || cs.count()-n != tc.want {
			t.Errorf("%s: %d attempts (%v), want %d", tc.name, cs.count()-n, err, tc.want)
		}
	}

	// Invalid handles and arguments fail without a request.
	n := cs.count()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"scheme", ds.NewSubscription("ftp://h/v1/stream/", "s").Delete(ctx)},
		{"no host", ds.NewSubscription("http:///v1/stream/", "s").Delete(ctx)},
		{"empty id", ds.NewSubscription(cs.URL, "").Delete(ctx)},
		{"bad option", ds.NewSubscription(cs.URL, "s", ds.WithHeader("", "v")).Delete(ctx)},
		{"no streams", sub.AddStreams(ctx)},
		{"reserved stream", sub.AddStreams(ctx, "__ds/x")},
		{"empty path", sub.RemoveStream(ctx, "/")},
		{"empty ack stream", func() error { _, err := c.Ack(ctx, []ds.StreamAck{{Offset: "0_1"}}, false); return err }()},
		{"now", func() error { _, err := c.Ack(ctx, []ds.StreamAck{{Stream: "a", Offset: ds.Now}}, false); return err }()},
		{"empty worker", func() error { _, err := sub.Claim(ctx, ""); return err }()},
		{"bad config", func() error { _, _, err := sub.Create(ctx, ds.SubscriptionConfig{}); return err }()},
	} {
		if !errors.Is(tc.err, ds.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", tc.name, tc.err)
		}
	}
	if cs.count() != n {
		t.Fatalf("%d requests sent for invalid arguments", cs.count()-n)
	}
}

// The observer sees subscription operations by their Op.
func TestSubscriptionObserver(t *testing.T) {
	cs := newControlServer(t, http.StatusOK, claimAnswer)
	var mu sync.Mutex
	var ops []ds.Op
	obs := &opObserver{f: func(op ds.Op) { mu.Lock(); ops = append(ops, op); mu.Unlock() }}
	c, _ := ds.NewClient(ds.WithObserver(obs))
	sub := c.Subscription(cs.URL+"/v1/stream/", "s")
	cl, err := sub.Claim(context.Background(), "w")
	if err != nil {
		t.Fatal(err)
	}
	cs.set(http.StatusOK, `{"ok":true,"next_wake":false}`)
	cl.Ack(context.Background(), nil, false)
	mu.Lock()
	defer mu.Unlock()
	if len(ops) != 2 || ops[0] != ds.OpClaim || ops[1] != ds.OpAck {
		t.Fatalf("ops %v", ops)
	}
}

type opObserver struct {
	ds.NopObserver
	f func(ds.Op)
}

func (o *opObserver) RequestStart(e ds.RequestStartEvent) { o.f(e.Op) }
