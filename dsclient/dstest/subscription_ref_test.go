package dstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/internal/refserver"
)

// TestSubscriptionsLikeReferenceServer runs a pull-wake and a webhook scenario against dstest
// and the reference server 0.3.7 (with webhooks) and compares what both answer: statuses,
// error codes, holders, generations, link types, next_wake, wake events, deliveries and
// their signatures, and how cursors relate to tails (offsets themselves are opaque and may
// differ).
func TestSubscriptionsLikeReferenceServer(t *testing.T) {
	ref := refserver.ForTest(t, refserver.Options{LongPollTimeout: 3 * time.Second, Webhooks: true})
	ours := newTestServer(t, Options{LongPollTimeout: 3 * time.Second})
	for _, tc := range []struct {
		name   string
		script func(t *testing.T, root string) []string
	}{
		{"pull-wake", pullWakeTranscript},
		{"webhook", webhookTranscript},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.script(t, ref.StreamURL(""))
			got := tc.script(t, ours.StreamURL(""))
			for i := range max(len(got), len(want)) {
				var g, w string
				if i < len(got) {
					g = got[i]
				}
				if i < len(want) {
					w = want[i]
				}
				if g != w {
					t.Errorf("step %d:\n dstest:    %s\n reference: %s", i, g, w)
				}
			}
		})
	}
}

// pullWakeTranscript runs the scenario against the stream root root and describes each
// answer in one line.
func pullWakeTranscript(t *testing.T, root string) []string {
	var out []string
	note := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	call := func(method, path, body string, headers ...string) (int, map[string]any, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, root+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		return resp.StatusCode, m, resp.Header
	}
	errCode := func(m map[string]any) string {
		e, _ := m["error"].(map[string]any)
		s := fmt.Sprint(e["code"])
		if h, ok := e["current_holder"]; ok {
			s += fmt.Sprintf(" holder=%v generation=%v", h, e["generation"])
		}
		return s
	}
	tails := map[string]string{}
	appendTo := func(path, body string) {
		t.Helper()
		status, _, hd := call("POST", path, body)
		if status != 204 {
			t.Fatalf("append to %s: %d", path, status)
		}
		tails[path] = hd.Get("Stream-Next-Offset")
	}
	// offset describes an offset by what it equals.
	offset := func(path string, v any) string {
		switch s := fmt.Sprint(v); {
		case s == "-1":
			return "-1"
		case s == tails[path]:
			return "tail"
		default:
			return "other"
		}
	}
	links := func(v any) string {
		var parts []string
		for _, l := range v.([]any) {
			m := l.(map[string]any)
			p := fmt.Sprint(m["path"])
			s := fmt.Sprintf("%s:%v:acked=%s", p, m["link_type"], offset(p, m["acked_offset"]))
			if tail, ok := m["tail_offset"]; ok {
				s += fmt.Sprintf(":tail=%s:pending=%v", offset(p, tail), m["has_pending"])
			}
			parts = append(parts, s)
		}
		slices.Sort(parts)
		return strings.Join(parts, " ")
	}
	// wakes waits (with long-polls, not a sleep; for at most 15s) until the wake stream holds
	// n events and describes them.
	wakes := func(n int) string {
		t.Helper()
		var evs []map[string]any
		next := "-1"
		deadline := time.Now().Add(15 * time.Second)
		for len(evs) < n {
			q := "wake?offset=" + next
			if next != "-1" {
				q += "&live=long-poll"
			}
			req, _ := http.NewRequest("GET", root+q, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if h := resp.Header.Get("Stream-Next-Offset"); h != "" {
				next = h
			}
			if resp.StatusCode == 204 { // a long-poll timed out: an event may take longer (a lease)
				if time.Now().After(deadline) {
					break
				}
				continue
			}
			var more []map[string]any
			json.Unmarshal(b, &more)
			evs = append(evs, more...)
		}
		var parts []string
		for _, e := range evs {
			parts = append(parts, fmt.Sprintf("%v/%v/%v/gen%v", e["type"], e["subscription_id"], e["stream"], e["generation"]))
		}
		return strings.Join(parts, " ")
	}
	type claim struct {
		wake, token string
		gen         float64
	}
	doClaim := func(worker string) claim {
		t.Helper()
		status, m, _ := call("POST", "__ds/subscriptions/s/claim", `{"worker":"`+worker+`"}`)
		if status != 200 {
			note("claim %s: %d %s", worker, status, errCode(m))
			return claim{}
		}
		note("claim %s: 200 generation=%v lease=%v streams=%s", worker, m["generation"], m["lease_ttl_ms"], links(m["streams"]))
		return claim{wake: fmt.Sprint(m["wake_id"]), token: fmt.Sprint(m["token"]), gen: m["generation"].(float64)}
	}
	ack := func(what string, c claim, route string, done bool, acks ...string) {
		t.Helper()
		var entries []string
		for i := 0; i+1 < len(acks); i += 2 {
			entries = append(entries, fmt.Sprintf(`{"stream":%q,"offset":%q}`, acks[i], acks[i+1]))
		}
		body := fmt.Sprintf(`{"wake_id":%q,"generation":%v,"acks":[%s],"done":%v}`, c.wake, c.gen, strings.Join(entries, ","), done)
		status, m, _ := call("POST", "__ds/subscriptions/s/"+route, body, "Authorization", "Bearer "+c.token)
		switch {
		case status == 200:
			note("%s: 200 ok=%v next_wake=%v", what, m["ok"], m["next_wake"])
		case status >= 400:
			note("%s: %d %s", what, status, errCode(m))
		default:
			note("%s: %d", what, status)
		}
	}
	get := func() {
		status, m, _ := call("GET", "__ds/subscriptions/s", "")
		if status != 200 {
			note("get: %d %s", status, errCode(m))
			return
		}
		note("get: 200 type=%v pattern=%v wake_stream=%v lease=%v status=%v streams=%s", m["type"], m["pattern"], m["wake_stream"], m["lease_ttl_ms"], m["status"], links(m["streams"]))
	}

	status, _, _ := call("PUT", "wake", "[]")
	note("create wake stream: %d", status)
	status, _, hd := call("PUT", "events/old", `{"n":0}`)
	tails["events/old"] = hd.Get("Stream-Next-Offset")
	note("create events/old: %d", status)
	cfg := `{"type":"pull-wake","pattern":"events/*","streams":["manual/a"],"wake_stream":"wake","lease_ttl_ms":3000}`
	status, m, _ := call("PUT", "__ds/subscriptions/s", cfg)
	note("create subscription: %d streams=%s", status, links(m["streams"]))
	status, _, _ = call("PUT", "__ds/subscriptions/s", cfg)
	note("re-confirm: %d", status)
	status, m, _ = call("PUT", "__ds/subscriptions/s", strings.Replace(cfg, "3000", "4000", 1))
	note("conflict: %d %s", status, errCode(m))
	status, m, _ = call("PUT", "__ds/subscriptions/bad", `{"type":"pull-wake","pattern":"x/*"}`)
	note("no wake stream: %d %s", status, errCode(m))
	status, m, _ = call("PUT", "__ds/subscriptions/bad", `{"type":"pull-wake","wake_stream":"wake"}`)
	note("no streams: %d %s", status, errCode(m))
	doClaim("w1")

	appendTo("events/old", `{"n":1}`)
	note("wakes: %s", wakes(1))
	status, _, hd = call("PUT", "events/new", `{"n":1}`)
	tails["events/new"] = hd.Get("Stream-Next-Offset")
	note("create events/new: %d", status)
	get()
	c1 := doClaim("w1")
	doClaim("w2")
	ack("heartbeat", c1, "ack", false, "events/old", tails["events/old"])
	get()
	ack("ack unknown stream", c1, "ack", false, "events/none", tails["events/old"])
	ack("ack -1", c1, "ack", false, "events/new", "-1")
	ack("ack regress", c1, "ack", false, "events/old", "0000000000000000_0000000000000000")
	ack("no token", claim{wake: c1.wake, gen: c1.gen}, "ack", false)
	ack("bad token", claim{wake: c1.wake, gen: c1.gen, token: "a.b"}, "ack", false)
	ack("wrong wake", claim{wake: "w_x", gen: c1.gen, token: c1.token}, "ack", false)
	ack("done with work left", c1, "ack", true)
	note("wakes: %s", wakes(2))
	ack("stale ack", c1, "ack", false)
	c2 := doClaim("w2")
	ack("release", c2, "release", false)
	note("wakes: %s", wakes(3))
	ack("stale release", c2, "release", false)
	c3 := doClaim("w1")
	note("wakes after the lease: %s", wakes(4)) // the lease (3s) runs out: generation 4
	ack("expired holder", c3, "ack", true)
	c4 := doClaim("w2")
	ack("done", c4, "ack", true, "events/old", tails["events/old"], "events/new", tails["events/new"])
	doClaim("w1")
	status, _, _ = call("POST", "__ds/subscriptions/s/streams", `{"streams":["events/old","manual/b"]}`)
	note("add streams: %d", status)
	get()
	status, _, _ = call("DELETE", "__ds/subscriptions/s/streams/events%2Fold", "")
	note("remove events/old: %d", status)
	status, _, _ = call("DELETE", "__ds/subscriptions/s/streams/manual/b", "")
	note("remove manual/b: %d", status)
	get()
	status, _, _ = call("DELETE", "events/new", "")
	note("delete events/new: %d", status)
	get()
	status, _, _ = call("DELETE", "__ds/subscriptions/s", "")
	note("delete: %d", status)
	get()
	status, _, _ = call("DELETE", "__ds/subscriptions/s", "")
	note("delete again: %d", status)
	doClaim("w1")
	ack("ack after delete", c4, "ack", false)
	status, m, _ = call("GET", "__ds/elsewhere", "")
	note("unknown control route: %d %s", status, errCode(m))
	status, _, hd = call("GET", "__ds/jwks.json", "")
	note("jwks: %d %s", status, hd.Get("Content-Type"))
	return out
}

// webhookTranscript runs the webhook scenario against the stream root root and describes
// what the receiver and the client see, one line a step.
func webhookTranscript(t *testing.T, root string) []string {
	var out []string
	note := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	rc := newReceiver(t)
	hook := httptest.NewServer(rc)
	defer hook.Close()
	call := func(method, path, body string, headers ...string) (int, map[string]any, http.Header) {
		t.Helper()
		url := path
		if !strings.HasPrefix(path, "http") {
			url = root + path
		}
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		return resp.StatusCode, m, resp.Header
	}
	tails := map[string]string{}
	appendTo := func(path, body string) {
		t.Helper()
		status, _, hd := call("POST", path, body)
		if status != 204 {
			t.Fatalf("append to %s: %d", path, status)
		}
		tails[path] = hd.Get("Stream-Next-Offset")
	}
	next := func() delivered {
		t.Helper()
		select {
		case d := <-rc.got:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
			return delivered{}
		}
	}
	var jwks string
	describe := func(d delivered) string {
		t.Helper()
		verifySignature(t, d.raw, d.signature, []byte(jwks))
		var s []string
		for _, st := range d.payload.Streams {
			acked := "other"
			switch st.AckedOffset {
			case "-1":
				acked = "-1"
			case tails[st.Path]:
				acked = "tail"
			}
			s = append(s, fmt.Sprintf("%s:%s:acked=%s:tail=%v:pending=%v", st.Path, st.LinkType, acked, st.TailOffset == tails[st.Path], st.HasPending))
		}
		slices.Sort(s)
		return fmt.Sprintf("generation=%d callback=%v token=%v streams=%s", d.payload.Generation,
			d.payload.CallbackURL == root+"__ds/subscriptions/h/callback", d.payload.CallbackToken != "", strings.Join(s, " "))
	}
	callback := func(what string, d delivered, done bool, acks ...string) {
		t.Helper()
		status, m, _ := call("POST", d.payload.CallbackURL, ackBody(d.payload.WakeID, d.payload.Generation, done, acks...), bearer(d.payload.CallbackToken)...)
		if status == 200 {
			note("%s: 200 ok=%v next_wake=%v", what, m["ok"], m["next_wake"])
			return
		}
		e, _ := m["error"].(map[string]any)
		note("%s: %d %v", what, status, e["code"])
	}

	status, m, _ := call("PUT", "__ds/subscriptions/h", `{"type":"webhook","pattern":"hooks/*","webhook":{"url":"`+hook.URL+`/hook"},"lease_ttl_ms":5000}`)
	wh, _ := m["webhook"].(map[string]any)
	signing, _ := wh["signing"].(map[string]any)
	note("create: %d url=%v alg=%v jwks_url=%v secret=%v", status, wh["url"] == hook.URL+"/hook", signing["alg"], signing["jwks_url"] == root+"__ds/jwks.json", strings.Contains(fmt.Sprint(m), "secret"))
	resp, err := http.Get(fmt.Sprint(signing["jwks_url"]))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	jwks = string(b)
	note("jwks: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	status, m, _ = call("PUT", "__ds/subscriptions/bad", `{"type":"webhook","pattern":"hooks/*","webhook":{"url":"https://192.168.0.1/hook"}}`)
	note("private URL: %d %v", status, m["error"].(map[string]any)["code"])

	// A delivery answered {}: the receiver calls back.
	status, _, hd := call("PUT", "hooks/a", `{"n":1}`)
	tails["hooks/a"] = hd.Get("Stream-Next-Offset")
	note("create hooks/a: %d", status)
	d1 := next()
	note("delivery: %s", describe(d1))
	callback("heartbeat", d1, false)
	callback("callback wrong wake", delivered{payload: webhookPayload{WakeID: "w_x", Generation: d1.payload.Generation, CallbackURL: d1.payload.CallbackURL, CallbackToken: d1.payload.CallbackToken}}, false)
	callback("callback done", d1, true, "hooks/a", tails["hooks/a"])
	callback("stale callback", d1, true)

	// A delivery that fails is retried (same wake), then answered {"done":true}.
	rc.setAnswer(func(n int, _ *http.Request) (int, string) {
		if n == 2 {
			return 500, ""
		}
		return 200, `{"done":true}`
	})
	appendTo("hooks/a", `{"n":2}`)
	d2 := next()
	note("delivery: %s", describe(d2))
	d3 := next()
	gap := d3.at.Sub(d2.at)
	note("retry: %s same wake=%v gap ok=%v", describe(d3), d3.payload.WakeID == d2.payload.WakeID, gap > 700*time.Millisecond && gap < 5*time.Second)
	appendTo("hooks/a", `{"n":3}`)
	d4 := next()
	note("delivery after done: generation=%d acked at the retried wake's tail: %v", d4.payload.Generation, d4.stream(t, "hooks/a").AckedOffset == d3.stream(t, "hooks/a").TailOffset)
	status, _, _ = call("DELETE", "__ds/subscriptions/h", "")
	note("delete: %d", status)
	callback("callback after delete", d4, true)
	return out
}
