package dstest

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

func TestSubscriptionCreateConfirmDelete(t *testing.T) {
	x := newSubHarness(t, Options{})
	cfg := `{"type":"pull-wake","pattern":"/events/*/","streams":["m/b","m/a","m/b"],"wake_stream":"wake","lease_ttl_ms":5000,"description":"d"}`
	v := x.create("s1", cfg)
	if v.ID != "s1" || v.SubscriptionID != "s1" || v.Type != "pull-wake" || v.Pattern != "events/*" ||
		v.WakeStream != "wake" || v.LeaseTTLMS != 5000 || v.Status != "active" || v.Description == nil || *v.Description != "d" || v.Webhook != nil {
		t.Fatalf("created: %+v", v)
	}
	if _, err := time.Parse(time.RFC3339, v.CreatedAt); err != nil || !strings.HasSuffix(v.CreatedAt, "Z") {
		t.Errorf("created_at %q: %v", v.CreatedAt, err)
	}
	want := []linkView{
		{Path: "m/a", LinkType: "explicit", AckedOffset: zeroOffset},
		{Path: "m/b", LinkType: "explicit", AckedOffset: zeroOffset},
	}
	if !slices.Equal(v.Streams, want) {
		t.Fatalf("streams %+v, want %+v", v.Streams, want)
	}
	// The same configuration, normalized (stream order, duplicates, slashes), re-confirms.
	x.want(http.StatusOK, "PUT", sub("s1"), `{"type":"pull-wake","pattern":"events/*","streams":["m/a","/m/b/"],"wake_stream":"/wake","lease_ttl_ms":5000,"description":"d"}`)
	// Anything else conflicts, the default lease included when it was given explicitly.
	for _, other := range []string{
		`{"type":"pull-wake","pattern":"events/*","streams":["m/a","m/b"],"wake_stream":"wake","lease_ttl_ms":5000}`,
		`{"type":"pull-wake","pattern":"events/**","streams":["m/a","m/b"],"wake_stream":"wake","lease_ttl_ms":5000,"description":"d"}`,
		`{"type":"pull-wake","pattern":"events/*","streams":["m/a"],"wake_stream":"wake","lease_ttl_ms":5000,"description":"d"}`,
		`{"type":"pull-wake","pattern":"events/*","streams":["m/a","m/b"],"wake_stream":"wake2","lease_ttl_ms":5000,"description":"d"}`,
		`{"type":"pull-wake","pattern":"events/*","streams":["m/a","m/b"],"wake_stream":"wake","description":"d"}`,
		`{"type":"webhook","pattern":"events/*","streams":["m/a","m/b"],"webhook":{"url":"http://127.0.0.1/h"},"lease_ttl_ms":5000,"description":"d"}`,
	} {
		x.wantError(http.StatusConflict, protocol.CodeSubscriptionExists, "PUT", sub("s1"), other)
	}
	// A lease left out is the default one, and re-confirms an explicit default.
	x.create("s2", `{"type":"pull-wake","streams":["a"],"wake_stream":"w"}`)
	x.want(http.StatusOK, "PUT", sub("s2"), `{"type":"pull-wake","streams":["a"],"wake_stream":"w","lease_ttl_ms":30000}`)

	x.want(http.StatusNoContent, "DELETE", sub("s1"), "")
	x.wantError(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "GET", sub("s1"), "")
	x.want(http.StatusNoContent, "DELETE", sub("s1"), "") // idempotent
	x.create("s1", cfg)                                   // the id can be used again
	x.want(http.StatusMethodNotAllowed, "PATCH", sub("s1"), "")
	x.want(http.StatusMethodNotAllowed, "GET", sub("s1")+"/claim", "")
	x.wantError(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "POST", sub("s1")+"/nothing", "{}")
	x.wantError(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "GET", sub(""), "")
}

func TestSubscriptionCreateInvalid(t *testing.T) {
	x := newSubHarness(t, Options{})
	for _, tc := range []struct {
		name, body, code, msg string
	}{
		{"not JSON", `{"type":`, protocol.CodeInvalidRequest, "invalid JSON"},
		{"not an object", `[1]`, protocol.CodeInvalidRequest, "JSON object"},
		{"null", `null`, protocol.CodeInvalidRequest, "JSON object"},
		{"empty", ``, protocol.CodeInvalidRequest, "type"},
		{"bad type", `{"type":"push","streams":["a"]}`, protocol.CodeInvalidRequest, "type"},
		{"no streams", `{"type":"pull-wake","wake_stream":"w"}`, protocol.CodeInvalidRequest, "pattern or streams"},
		{"empty streams", `{"type":"pull-wake","streams":[],"pattern":"","wake_stream":"w"}`, protocol.CodeInvalidRequest, "pattern or streams"},
		{"stream not a string", `{"type":"pull-wake","streams":["a",1],"wake_stream":"w"}`, protocol.CodeInvalidRequest, "only strings"},
		{"empty stream", `{"type":"pull-wake","streams":["/"],"wake_stream":"w"}`, protocol.CodeInvalidRequest, "application streams"},
		{"reserved stream", `{"type":"pull-wake","streams":["__ds/x"],"wake_stream":"w"}`, protocol.CodeInvalidRequest, "application streams"},
		{"reserved pattern", `{"type":"pull-wake","pattern":"__ds/*","wake_stream":"w"}`, protocol.CodeInvalidRequest, "reserved"},
		{"lease too short", `{"type":"pull-wake","streams":["a"],"wake_stream":"w","lease_ttl_ms":999}`, protocol.CodeInvalidRequest, "lease_ttl_ms"},
		{"lease too long", `{"type":"pull-wake","streams":["a"],"wake_stream":"w","lease_ttl_ms":600001}`, protocol.CodeInvalidRequest, "lease_ttl_ms"},
		{"lease fraction", `{"type":"pull-wake","streams":["a"],"wake_stream":"w","lease_ttl_ms":1000.5}`, protocol.CodeInvalidRequest, "lease_ttl_ms"},
		{"lease string", `{"type":"pull-wake","streams":["a"],"wake_stream":"w","lease_ttl_ms":"1000"}`, protocol.CodeInvalidRequest, "lease_ttl_ms"},
		{"no wake stream", `{"type":"pull-wake","streams":["a"]}`, protocol.CodeInvalidRequest, "wake_stream"},
		{"reserved wake stream", `{"type":"pull-wake","streams":["a"],"wake_stream":"__ds"}`, protocol.CodeInvalidRequest, "wake_stream"},
		{"no webhook", `{"type":"webhook","streams":["a"]}`, protocol.CodeInvalidRequest, "webhook.url"},
		{"webhook without url", `{"type":"webhook","streams":["a"],"webhook":{}}`, protocol.CodeInvalidRequest, "webhook.url"},
		{"private webhook", `{"type":"webhook","streams":["a"],"webhook":{"url":"http://10.0.0.1/hook"}}`, protocol.CodeWebhookURLRejected, "localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x.t = t
			e := x.wantError(http.StatusBadRequest, tc.code, "PUT", sub("bad"), tc.body)
			if !strings.Contains(e.Message, tc.msg) {
				t.Errorf("message %q does not mention %q", e.Message, tc.msg)
			}
		})
	}
	x.t = t
	x.wantError(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "GET", sub("bad"), "")
	if n := x.h.subs.count.Load(); n != 0 {
		t.Fatalf("%d subscriptions after invalid creates", n)
	}
}

func TestWebhookURLValidation(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/hook", true},
		{"http://127.0.0.2/hook", true},
		{"http://localhost/hook", true},
		{"http://LOCALHOST:1/hook", true},
		{"https://worker.example/hooks", true},
		{"https://93.184.216.34/hook", true},
		{"http://worker.example/hooks", false}, // plain http only for local development
		{"http://10.0.0.1/hook", false},
		{"http://[::1]/hook", false},
		{"https://localhost/hook", false},
		{"https://127.0.0.1/hook", false},
		{"https://10.1.2.3/hook", false},
		{"https://172.16.0.1/hook", false},
		{"https://192.168.1.1/hook", false},
		{"https://169.254.169.254/latest/meta-data", false}, // cloud metadata
		{"https://100.64.0.1/hook", false},
		{"https://0.0.0.0/hook", false},
		{"https://[2001:db8::1]/hook", false},
		{"https://[::ffff:10.0.0.1]/hook", false},
		{"ftp://worker.example/hook", false},
		{"/relative", false},
		{"::not a url", false},
	} {
		if msg := checkWebhookURL(tc.url); (msg == "") != tc.ok {
			t.Errorf("%s: %q, want accepted=%v", tc.url, msg, tc.ok)
		}
	}
}

func TestSubscriptionLimits(t *testing.T) {
	x := newSubHarness(t, Options{MaxSubscriptions: 2, MaxExplicitStreams: 2})
	x.create("a", `{"type":"pull-wake","streams":["s1","s2"],"wake_stream":"w"}`)
	x.create("b", `{"type":"pull-wake","pattern":"p/*","wake_stream":"w"}`)
	e := x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "PUT", sub("c"), `{"type":"pull-wake","streams":["s1"],"wake_stream":"w"}`)
	if !strings.Contains(e.Message, "MaxSubscriptions") {
		t.Errorf("message %q", e.Message)
	}
	x.want(http.StatusOK, "PUT", sub("a"), `{"type":"pull-wake","streams":["s2","s1"],"wake_stream":"w"}`) // re-confirming is not creating
	e = x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "POST", sub("a")+"/streams", `{"streams":["s3"]}`)
	if !strings.Contains(e.Message, "MaxExplicitStreams") {
		t.Errorf("message %q", e.Message)
	}
	x.want(http.StatusNoContent, "POST", sub("a")+"/streams", `{"streams":["s1"]}`) // already linked
	x.want(http.StatusNoContent, "DELETE", sub("a")+"/streams/s1", "")
	x.want(http.StatusNoContent, "POST", sub("a")+"/streams", `{"streams":["s3"]}`)
	x.want(http.StatusNoContent, "DELETE", sub("b"), "")
	x.create("c", `{"type":"pull-wake","streams":["s1"],"wake_stream":"w"}`)
	x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "PUT", sub("d"), `{"type":"pull-wake","streams":["s1","s2","s3"],"wake_stream":"w"}`)
}

func TestSubscriptionPatternLinks(t *testing.T) {
	x := newSubHarness(t, Options{})
	x.stream("wake", "")
	x.stream("events/old", `{"n":1}`)
	oldTail := x.tail("events/old")
	x.stream("events/empty", "")
	x.stream("events/deep/x", `{"n":1}`)
	x.stream("other/x", `{"n":1}`)
	v := x.create("s", `{"type":"pull-wake","pattern":"events/*","wake_stream":"wake"}`)
	// Existing matching streams are linked at their tail: history is not replayed.
	want := []linkView{
		{Path: "events/empty", LinkType: "glob", AckedOffset: zeroOffset},
		{Path: "events/old", LinkType: "glob", AckedOffset: oldTail},
	}
	if !slices.Equal(v.Streams, want) {
		t.Fatalf("backfilled %+v, want %+v", v.Streams, want)
	}
	if evs := x.wakes("wake"); len(evs) != 0 {
		t.Fatalf("wakes at creation: %+v", evs)
	}
	// Streams that do not match are never linked, however often they are appended to.
	x.append("other/x", `{"n":2}`)
	x.append("events/deep/x", `{"n":2}`)
	// A stream created later is linked at -1 with its first data, and wakes.
	x.stream("events/new", `{"n":1}`)
	if got := x.acked("s", "events/new"); got != "-1" {
		t.Fatalf("new stream linked at %q, want -1", got)
	}
	evs := x.wakes("wake")
	if len(evs) != 1 || evs[0].Type != "wake" || evs[0].SubscriptionID != "s" || evs[0].Stream != "events/new" || evs[0].Generation != 1 || evs[0].TS == 0 {
		t.Fatalf("wake events %+v", evs)
	}
	// A stream created empty is linked by its first append, not by its creation.
	x.stream("events/later", "")
	if got := x.acked("s", "events/later"); got != "" {
		t.Fatalf("empty new stream linked at %q", got)
	}
	x.append("events/later", `{"n":1}`)
	if got := x.acked("s", "events/later"); got != "-1" {
		t.Fatalf("stream linked at %q by its first append, want -1", got)
	}
	// One wake is in flight: further appends write no more wake events.
	x.append("events/old", `{"n":2}`)
	if evs := x.wakes("wake"); len(evs) != 1 {
		t.Fatalf("%d wake events, want 1", len(evs))
	}
	// A deleted stream is unlinked; created again with data, it is linked at -1 again.
	x.want(http.StatusNoContent, "DELETE", "events/new", "")
	if got := x.acked("s", "events/new"); got != "" {
		t.Fatalf("deleted stream still linked at %q", got)
	}
	x.stream("events/new", `{"n":1}`)
	if got := x.acked("s", "events/new"); got != "-1" {
		t.Fatalf("re-created stream linked at %q", got)
	}
}

func TestSubscriptionOwnWakeStreamNotLinked(t *testing.T) {
	x := newSubHarness(t, Options{})
	x.stream("pool/wake", "")
	x.create("s", `{"type":"pull-wake","pattern":"pool/**","wake_stream":"pool/wake"}`)
	x.stream("pool/a", `{"n":1}`)
	c := x.claim("s", "w")
	if len(c.Streams) != 1 || c.Streams[0].Path != "pool/a" {
		t.Fatalf("claimed streams %+v: the wake stream must not be linked by the pattern", c.Streams)
	}
	if next := x.ack("s", c, true, "pool/a", c.Streams[0].TailOffset); next {
		t.Fatal("next_wake after acking everything")
	}
}

func TestSubscriptionExplicitStreams(t *testing.T) {
	x := newSubHarness(t, Options{})
	x.stream("manual/b", `{"n":1}`)
	bTail := x.tail("manual/b")
	x.stream("events/both", `{"n":1}`)
	x.create("s", `{"type":"pull-wake","pattern":"events/*","streams":["manual/a"],"wake_stream":"wake"}`)
	x.want(http.StatusNoContent, "POST", sub("s")+"/streams", `{"streams":["manual/b","/events/both"]}`)
	x.want(http.StatusNoContent, "POST", sub("s")+"/streams", `{"streams":["manual/b"]}`) // idempotent
	want := []linkView{
		{Path: "events/both", LinkType: "explicit", AckedOffset: x.tail("events/both")}, // explicit wins
		{Path: "manual/a", LinkType: "explicit", AckedOffset: zeroOffset},
		{Path: "manual/b", LinkType: "explicit", AckedOffset: bTail}, // linked at its tail
	}
	if got := x.get("s").Streams; !slices.Equal(got, want) {
		t.Fatalf("streams %+v, want %+v", got, want)
	}
	// Removing the explicit link keeps the glob link; the path may be URL-encoded.
	x.want(http.StatusNoContent, "DELETE", sub("s")+"/streams/events%2Fboth", "")
	x.want(http.StatusNoContent, "DELETE", sub("s")+"/streams/manual/b", "")
	x.want(http.StatusNoContent, "DELETE", sub("s")+"/streams/manual/nothing", "") // idempotent
	want = []linkView{
		{Path: "events/both", LinkType: "glob", AckedOffset: want[0].AckedOffset},
		{Path: "manual/a", LinkType: "explicit", AckedOffset: zeroOffset},
	}
	if got := x.get("s").Streams; !slices.Equal(got, want) {
		t.Fatalf("streams after removal %+v, want %+v", got, want)
	}
	for _, body := range []string{`{}`, `{"streams":[]}`, `{"streams":[""]}`, `{"streams":[1]}`, `{"streams":"a"}`} {
		x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "POST", sub("s")+"/streams", body)
	}
	x.wantError(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "POST", sub("none")+"/streams", `{"streams":["a"]}`)
	x.wantError(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "DELETE", sub("none")+"/streams/a", "")
	x.want(http.StatusMethodNotAllowed, "GET", sub("s")+"/streams", "")
	x.want(http.StatusMethodNotAllowed, "POST", sub("s")+"/streams/a", "")
}

func TestPullWakeClaimAckRelease(t *testing.T) {
	x := newSubHarness(t, Options{})
	x.stream("wake", "")
	x.stream("events/a", "")
	x.stream("events/b", "")
	x.create("s", `{"type":"pull-wake","pattern":"events/*","wake_stream":"wake","lease_ttl_ms":60000}`)
	x.wantError(http.StatusConflict, protocol.CodeNoPendingWork, "POST", sub("s")+"/claim", `{"worker":"w1"}`)

	a1 := x.append("events/a", `{"n":1}`)
	a2 := x.append("events/a", `{"n":2}`)
	x.append("events/b", `{"n":1}`)
	evs := x.wakes("wake")
	if len(evs) != 1 || evs[0].Stream != "events/a" || evs[0].Generation != 1 {
		t.Fatalf("wake events %+v", evs)
	}
	c := x.claim("s", "w1")
	if c.Generation != 1 || !strings.HasPrefix(c.WakeID, "w_") || c.Token == "" || c.LeaseTTLMS != 60000 || len(c.Streams) != 2 {
		t.Fatalf("claim %+v", c)
	}
	if a := c.stream(t, "events/a"); a.AckedOffset != zeroOffset || a.TailOffset != a2 || !a.HasPending || a.LinkType != "glob" {
		t.Fatalf("events/a in the claim: %+v", a)
	}
	busy := x.wantError(http.StatusConflict, protocol.CodeAlreadyClaimed, "POST", sub("s")+"/claim", `{"worker":"w2"}`)
	if busy.CurrentHolder != "w1" || busy.Generation == nil || *busy.Generation != 1 {
		t.Fatalf("ALREADY_CLAIMED %+v", busy)
	}
	// An ack without done is a heartbeat that applies its acks at once.
	if x.ack("s", c, false, "events/a", a1) {
		t.Fatal("next_wake on a heartbeat")
	}
	if got := x.acked("s", "events/a"); got != a1 {
		t.Fatalf("cursor %s after the heartbeat, want %s", got, a1)
	}
	x.ack("s", c, false) // an empty heartbeat
	// Done with work left (events/b): the lease is released and the next wake issued.
	if !x.ack("s", c, true, "events/a", a2) {
		t.Fatal("no next_wake with events/b pending")
	}
	evs = x.wakes("wake")
	if len(evs) != 2 || evs[1].Stream != "events/b" || evs[1].Generation != 2 {
		t.Fatalf("wake events %+v", evs)
	}
	// The old claim is fenced once done.
	x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", sub("s")+"/ack", ackBody(c.WakeID, c.Generation, false), bearer(c.Token)...)
	c2 := x.claim("s", "w2")
	if c2.Generation != 2 || c2.WakeID == c.WakeID {
		t.Fatalf("second claim %+v", c2)
	}
	// A release gives the lease back; with work pending, the next wake follows.
	x.want(http.StatusNoContent, "POST", sub("s")+"/release", ackBody(c2.WakeID, c2.Generation, false), bearer(c2.Token)...)
	x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", sub("s")+"/release", ackBody(c2.WakeID, c2.Generation, false), bearer(c2.Token)...)
	if evs = x.wakes("wake"); len(evs) != 3 || evs[2].Generation != 3 {
		t.Fatalf("wake events after release %+v", evs)
	}
	c3 := x.claim("s", "w1")
	bTail := c3.stream(t, "events/b").TailOffset
	if x.ack("s", c3, true, "events/b", bTail) {
		t.Fatal("next_wake with nothing pending")
	}
	if evs = x.wakes("wake"); len(evs) != 3 {
		t.Fatalf("a wake with nothing pending: %+v", evs)
	}
	x.wantError(http.StatusConflict, protocol.CodeNoPendingWork, "POST", sub("s")+"/claim", `{"worker":"w1"}`)
	// A claim without a wake event first (the wake stream was missed) still works: it issues
	// the wake itself.
	x.append("events/b", `{"n":2}`)
	if evs = x.wakes("wake"); len(evs) != 4 || evs[3].Generation != 4 {
		t.Fatalf("wake events %+v", evs)
	}
	if c4 := x.claim("s", "w3"); c4.Generation != 4 {
		t.Fatalf("claim %+v", c4)
	}
	for _, body := range []string{`{}`, `{"worker":""}`, `{"worker":7}`} {
		x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "POST", sub("s")+"/claim", body)
	}
	x.wantError(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "POST", sub("none")+"/claim", `{"worker":"w"}`)
}

func TestPullWakeAckValidation(t *testing.T) {
	x := newSubHarness(t, Options{})
	x.stream("wake", "")
	x.stream("events/a", "")
	x.stream("events/b", "")
	x.create("s", `{"type":"pull-wake","pattern":"events/*","wake_stream":"wake"}`)
	x.create("other", `{"type":"pull-wake","streams":["events/a"],"wake_stream":"wake"}`)
	a1 := x.append("events/a", `{"n":1}`)
	a2 := x.append("events/a", `{"n":2}`)
	b1 := x.append("events/b", `{"n":1}`)
	c := x.claim("s", "w")
	co := x.claim("other", "w")
	x.ack("s", c, false, "events/a", a2)

	ackURL := sub("s") + "/ack"
	good := ackBody(c.WakeID, c.Generation, false)
	x.wantError(http.StatusUnauthorized, protocol.CodeTokenInvalid, "POST", ackURL, good)
	x.wantError(http.StatusUnauthorized, protocol.CodeTokenInvalid, "POST", ackURL, good, "Authorization", "Basic abc")
	x.wantError(http.StatusUnauthorized, protocol.CodeTokenInvalid, "POST", ackURL, good, bearer("nonsense")...)
	x.wantError(http.StatusUnauthorized, protocol.CodeTokenInvalid, "POST", ackURL, good, bearer(c.Token+"x")...)
	x.wantError(http.StatusUnauthorized, protocol.CodeTokenInvalid, "POST", ackURL, good, bearer(co.Token)...) // another subscription's
	for _, body := range []string{
		ackBody("w_other", c.Generation, false),
		ackBody(c.WakeID, c.Generation+1, false),
		`{"generation":1}`,
		`{"wake_id":"` + c.WakeID + `"}`,
	} {
		x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", ackURL, body, bearer(c.Token)...)
	}
	for _, acks := range [][]string{
		{"events/none", a1},
		{"", a1},
		{"events/a", "-1"},
		{"events/a", "garbage"},
		{"events/a", a1},                      // before the cursor
		{"events/b", "0000000000000000_9999"}, // past the tail
		{"events/b", "0000000000000001_0000000000000000"},
		{"events/b", b1, "events/a", a1}, // all or nothing: events/b does not move
	} {
		x.wantError(http.StatusConflict, protocol.CodeInvalidOffset, "POST", ackURL, ackBody(c.WakeID, c.Generation, false, acks...), bearer(c.Token)...)
	}
	if got := x.acked("s", "events/b"); got != zeroOffset {
		t.Fatalf("a refused ack moved events/b to %s", got)
	}
	if got := x.acked("s", "events/a"); got != a2 {
		t.Fatalf("a refused ack moved events/a to %s", got)
	}
	x.ack("s", c, false, "events/a", a2) // acking the cursor again is allowed
	// "path" is accepted for "stream", as on the reference server.
	x.want(http.StatusOK, "POST", ackURL, `{"wake_id":"`+c.WakeID+`","generation":1,"acks":[{"path":"events/b","offset":"`+b1+`"}]}`, bearer(c.Token)...)
	if got := x.acked("s", "events/b"); got != b1 {
		t.Fatalf("events/b at %s, want %s", got, b1)
	}
	x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "POST", ackURL, `{"wake_id":1}`, bearer(c.Token)...)
	x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "POST", ackURL, `{"wake_id":`, bearer(c.Token)...)
	// A deleted subscription refuses acks and moves no cursor.
	x.want(http.StatusNoContent, "DELETE", sub("s"), "")
	x.wantError(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "POST", ackURL, good, bearer(c.Token)...)
	x.create("s", `{"type":"pull-wake","pattern":"events/*","wake_stream":"wake"}`)
	x.append("events/a", `{"n":3}`)
	c2 := x.claim("s", "w")
	if c2.Generation != 1 {
		t.Fatalf("the re-created subscription starts at generation %d", c2.Generation)
	}
	// A token of the deleted subscription, for the same id and generation, is fenced by the
	// wake id.
	x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", ackURL, ackBody(c.WakeID, 1, true), bearer(c.Token)...)
}

func TestPullWakeLeaseExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newSubHarness(t, Options{})
		x.stream("wake", "")
		x.stream("events/a", "")
		x.create("s", `{"type":"pull-wake","pattern":"events/*","wake_stream":"wake","lease_ttl_ms":1000}`)
		a1 := x.append("events/a", `{"n":1}`)
		x.append("events/a", `{"n":2}`)
		c := x.claim("s", "w1")
		// Heartbeats well inside the lease keep it.
		for range 5 {
			time.Sleep(900 * time.Millisecond)
			x.ack("s", c, false)
		}
		x.wantError(http.StatusConflict, protocol.CodeAlreadyClaimed, "POST", sub("s")+"/claim", `{"worker":"w2"}`)
		x.ack("s", c, false, "events/a", a1)
		// Without a heartbeat the lease ends; the work left wakes the next generation.
		time.Sleep(1001 * time.Millisecond)
		synctest.Wait()
		evs := x.wakes("wake")
		if len(evs) != 2 || evs[1].Generation != 2 {
			t.Fatalf("wake events after the lease %+v", evs)
		}
		x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", sub("s")+"/ack",
			ackBody(c.WakeID, c.Generation, true, "events/a", x.tail("events/a")), bearer(c.Token)...)
		if got := x.acked("s", "events/a"); got != a1 {
			t.Fatalf("a fenced ack moved the cursor to %s", got)
		}
		c2 := x.claim("s", "w2")
		if c2.Generation != 2 || c2.stream(t, "events/a").AckedOffset != a1 {
			t.Fatalf("the next holder's claim %+v", c2)
		}
		x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", sub("s")+"/release", ackBody(c.WakeID, c.Generation, false), bearer(c.Token)...)
		x.ack("s", c2, true, "events/a", x.tail("events/a"))

		// A lease that ends with nothing pending issues no wake, and the holder is fenced.
		x.append("events/a", `{"n":3}`)
		c3 := x.claim("s", "w3")
		x.ack("s", c3, false, "events/a", x.tail("events/a"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if evs := x.wakes("wake"); len(evs) != 3 {
			t.Fatalf("wake events %+v", evs)
		}
		x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", sub("s")+"/ack", ackBody(c3.WakeID, c3.Generation, true), bearer(c3.Token)...)
		x.wantError(http.StatusConflict, protocol.CodeNoPendingWork, "POST", sub("s")+"/claim", `{"worker":"w1"}`)
	})
}

func TestSubscriptionShortLeasesAndTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newSubHarness(t, Options{MinLeaseTTL: 10 * time.Millisecond, DefaultLeaseTTL: 50 * time.Millisecond, TokenTTL: 200 * time.Millisecond})
		x.stream("wake", "")
		x.stream("a", "")
		x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "PUT", sub("s"), `{"type":"pull-wake","streams":["a"],"wake_stream":"wake","lease_ttl_ms":9}`)
		if v := x.create("s", `{"type":"pull-wake","streams":["a"],"wake_stream":"wake"}`); v.LeaseTTLMS != 50 {
			t.Fatalf("default lease %d ms, want 50", v.LeaseTTLMS)
		}
		x.create("t", `{"type":"pull-wake","streams":["a"],"wake_stream":"wake","lease_ttl_ms":10}`)
		x.append("a", `1`)
		c := x.claim("s", "w")
		time.Sleep(40 * time.Millisecond)
		x.ack("s", c, false) // extends the 50ms lease
		time.Sleep(40 * time.Millisecond)
		x.wantError(http.StatusConflict, protocol.CodeAlreadyClaimed, "POST", sub("s")+"/claim", `{"worker":"w2"}`)
		x.ack("s", c, false)
		for range 3 { // keep it up to the token's end (200ms)
			time.Sleep(40 * time.Millisecond)
			x.ack("s", c, false)
		}
		time.Sleep(30 * time.Millisecond)
		x.wantError(http.StatusUnauthorized, protocol.CodeTokenExpired, "POST", sub("s")+"/ack", ackBody(c.WakeID, c.Generation, false), bearer(c.Token)...)
		ct := x.claim("t", "w")
		time.Sleep(11 * time.Millisecond)
		synctest.Wait()
		x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", sub("t")+"/ack", ackBody(ct.WakeID, ct.Generation, false), bearer(ct.Token)...)
	})
}

func TestSubscriptionFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newSubHarness(t, Options{})
		x.stream("wake", "")
		x.stream("events/a", "")
		x.create("s", `{"type":"pull-wake","pattern":"events/*","wake_stream":"wake"}`)
		a1 := x.append("events/a", `{"n":1}`)
		must(t, x.h.InjectFault(sub("s")+"/claim", Fault{Status: 503, RetryAfter: 2 * time.Second, Count: 2}))
		for range 2 {
			rec := x.do("POST", sub("s")+"/claim", `{"worker":"w"}`)
			if rec.Code != 503 || rec.Header().Get("Retry-After") != "2" {
				t.Fatalf("claim under a fault: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
			}
		}
		// The faults did not claim: the next request does.
		must(t, x.h.InjectFault(sub("s")+"/claim", Fault{Delay: 3 * time.Second}))
		start := time.Now()
		c := x.claim("s", "w")
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("claim delayed by %v, want 3s", d)
		}
		// An ack refused by a fault moves nothing.
		must(t, x.h.InjectFault(sub("s")+"/ack", Fault{Status: 500}))
		x.want(500, "POST", sub("s")+"/ack", ackBody(c.WakeID, c.Generation, false, "events/a", a1), bearer(c.Token)...)
		if got := x.acked("s", "events/a"); got != zeroOffset {
			t.Fatalf("a failed ack moved the cursor to %s", got)
		}
	})
}

// Over the network: a dropped claim claims nothing; an ack whose answer is lost on the way
// back was applied, and retrying it is harmless.
func TestSubscriptionDroppedRequests(t *testing.T) {
	srv := newTestServer(t, Options{})
	expect(t, 201, "PUT", srv.StreamURL("wake"), "", "Content-Type", "application/json")
	expect(t, 201, "PUT", srv.StreamURL("events/a"), "", "Content-Type", "application/json")
	expect(t, 201, "PUT", srv.StreamURL(sub("s")), `{"type":"pull-wake","pattern":"events/*","wake_stream":"wake"}`)
	resp, _ := expect(t, 204, "POST", srv.StreamURL("events/a"), `{"n":1}`, "Content-Type", "application/json")
	a1 := resp.Header.Get("Stream-Next-Offset")
	// A claim dropped before it is served claims nothing: the next one is not refused.
	must(t, srv.InjectFault(sub("s")+"/claim", Fault{Drop: true}))
	if resp, err := freshClient.Post(srv.StreamURL(sub("s")+"/claim"), "application/json", strings.NewReader(`{"worker":"lost"}`)); err == nil {
		resp.Body.Close()
		t.Fatalf("a dropped claim got status %d", resp.StatusCode)
	}
	_, body := expect(t, 200, "POST", srv.StreamURL(sub("s")+"/claim"), `{"worker":"w"}`)
	var c claimed
	decode(t, body, &c)
	must(t, srv.InjectFault(sub("s")+"/ack", Fault{DropMidBody: true}))
	req, _ := http.NewRequest("POST", srv.StreamURL(sub("s")+"/ack"), strings.NewReader(ackBody(c.WakeID, c.Generation, false, "events/a", a1)))
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if resp, err := freshClient.Do(req); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatal("the ack's answer arrived whole")
		}
	}
	var v subscriptionView
	_, body = expect(t, 200, "GET", srv.StreamURL(sub("s")), "")
	decode(t, body, &v)
	if v.Streams[0].AckedOffset != a1 {
		t.Fatalf("cursor %s, want %s: the ack was applied before its answer was cut", v.Streams[0].AckedOffset, a1)
	}
	expect(t, 200, "POST", srv.StreamURL(sub("s")+"/ack"), ackBody(c.WakeID, c.Generation, true, "events/a", a1), "Authorization", "Bearer "+c.Token)
}

func TestWakeStreamMissingOrClosed(t *testing.T) {
	x := newSubHarness(t, Options{})
	x.stream("events/a", "")
	x.create("s", `{"type":"pull-wake","pattern":"events/*","wake_stream":"wake"}`)
	x.append("events/a", `{"n":1}`) // no wake stream: the wake is issued, its event goes nowhere
	c := x.claim("s", "w")
	if c.Generation != 1 {
		t.Fatalf("claim %+v", c)
	}
	x.ack("s", c, true, "events/a", c.stream(t, "events/a").TailOffset)
	// A closed wake stream gets no event either.
	x.want(http.StatusCreated, "PUT", "wake", "", "Content-Type", "application/json", "Stream-Closed", "true")
	x.append("events/a", `{"n":2}`)
	if evs := x.wakes("wake"); len(evs) != 0 {
		t.Fatalf("events in a closed wake stream: %+v", evs)
	}
	// A text wake stream gets the events as text.
	x.want(http.StatusCreated, "PUT", "twake", "", "Content-Type", "text/plain")
	x.create("t", `{"type":"pull-wake","streams":["events/a"],"wake_stream":"twake"}`)
	x.append("events/a", `{"n":3}`)
	if body := x.want(http.StatusOK, "GET", "twake?offset=-1", ""); !strings.Contains(body, `"subscription_id":"t"`) {
		t.Fatalf("text wake stream: %q", body)
	}
	// A wake whose work went away (the stream was deleted) ends at the next claim, so that the
	// next append wakes again.
	x.want(http.StatusNoContent, "DELETE", "events/a", "")
	x.wantError(http.StatusConflict, protocol.CodeNoPendingWork, "POST", sub("t")+"/claim", `{"worker":"w"}`)
	x.want(http.StatusNoContent, "POST", sub("t")+"/streams", `{"streams":["events/a"]}`)
	x.stream("events/a", "")
	x.append("events/a", `{"n":1}`)
	if body := x.want(http.StatusOK, "GET", "twake?offset=-1", ""); strings.Count(body, `"subscription_id":"t"`) != 2 {
		t.Fatalf("text wake stream: %q", body)
	}
}

func TestSubscriptionReset(t *testing.T) {
	x := newSubHarness(t, Options{})
	x.create("s", `{"type":"pull-wake","streams":["a"],"wake_stream":"w"}`)
	x.h.Reset()
	x.wantError(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "GET", sub("s"), "")
	x.create("s", `{"type":"pull-wake","streams":["a"],"wake_stream":"w"}`)
}

func TestSubscriptionCustomPrefix(t *testing.T) {
	x := newSubHarness(t, Options{Prefix: "/s/"})
	x.stream("wake", "")
	x.stream("events/a", `{"n":1}`)
	v := x.create("hook", `{"type":"webhook","pattern":"events/*","webhook":{"url":"http://127.0.0.1/h"}}`)
	if v.Webhook.Signing.JWKSURL != "http://example.com/s/__ds/jwks.json" || len(v.Streams) != 1 || v.Streams[0].Path != "events/a" {
		t.Fatalf("under /s/: %+v %+v", v.Webhook.Signing, v.Streams)
	}
	x.want(http.StatusOK, "GET", "/s/__ds/jwks.json", "")
	x.want(http.StatusNotFound, "GET", "/v1/stream/__ds/jwks.json", "")
}
