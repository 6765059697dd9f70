package dstest

import (
	"net/http"
	"strings"
	"testing"
)

func TestCreateAppendReadHeadDelete(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("basic")

	resp, _ := expect(t, 201, "PUT", u, "", "Content-Type", "text/plain")
	header(t, resp, "Stream-Next-Offset", zeroOffset)
	header(t, resp, "Location", u)
	expect(t, 200, "PUT", u, "", "Content-Type", "text/plain")
	expect(t, 409, "PUT", u, "", "Content-Type", "application/json")

	resp, _ = expect(t, 204, "POST", u, "hello ", "Content-Type", "text/plain")
	first := resp.Header.Get("Stream-Next-Offset")
	resp, _ = expect(t, 204, "POST", u, "world", "Content-Type", "text/plain")
	tail := resp.Header.Get("Stream-Next-Offset")
	if !(zeroOffset < first && first < tail) {
		t.Fatalf("offsets not increasing: %s, %s, %s", zeroOffset, first, tail)
	}

	resp, body := expect(t, 200, "GET", u, "")
	if body != "hello world" {
		t.Fatalf("body %q", body)
	}
	header(t, resp, "Stream-Next-Offset", tail)
	header(t, resp, "Stream-Up-To-Date", "true")
	header(t, resp, "Content-Type", "text/plain")
	noHeader(t, resp, "Stream-Closed")

	_, body = expect(t, 200, "GET", u+"?offset="+first, "")
	if body != "world" {
		t.Fatalf("from %s: body %q", first, body)
	}
	resp, body = expect(t, 200, "GET", u+"?offset="+tail, "")
	if body != "" {
		t.Fatalf("at tail: body %q", body)
	}
	header(t, resp, "Stream-Next-Offset", tail)

	resp, _ = expect(t, 200, "HEAD", u, "")
	header(t, resp, "Stream-Next-Offset", tail)
	header(t, resp, "Cache-Control", "no-store")

	expect(t, 204, "DELETE", u, "")
	expect(t, 404, "GET", u, "")
	expect(t, 404, "HEAD", u, "")
	expect(t, 404, "POST", u, "x", "Content-Type", "text/plain")
	expect(t, 404, "DELETE", u, "")
}

func TestJSONMode(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("json")
	expect(t, 201, "PUT", u, "[]", "Content-Type", "application/json")
	_, body := expect(t, 200, "GET", u, "")
	if body != "[]" {
		t.Fatalf("empty stream: %q", body)
	}
	expect(t, 204, "POST", u, `{"a": 1}`, "Content-Type", "application/json; charset=utf-8")
	expect(t, 204, "POST", u, `[1, [2, 3], {"b": "x,]}"}]`, "Content-Type", "application/json")
	expect(t, 400, "POST", u, `[]`, "Content-Type", "application/json")
	expect(t, 400, "POST", u, `{"a":`, "Content-Type", "application/json")
	expect(t, 400, "POST", u, `1 2`, "Content-Type", "application/json")
	_, body = expect(t, 200, "GET", u, "")
	if want := `[{"a":1},1,[2,3],{"b":"x,]}"}]`; body != want {
		t.Fatalf("body %s, want %s", body, want)
	}
}

func TestNotAStreamPath(t *testing.T) {
	srv := newTestServer(t, Options{})
	expect(t, 404, "GET", srv.URL+"/elsewhere", "")
	expect(t, 404, "PUT", srv.URL+"/v1/stream/", "")
	// The reserved __ds routes are never streams: an unknown subscription or control route is
	// a JSON 404, and no stream can be created there.
	expect(t, 404, "GET", srv.StreamURL("__ds/subscriptions/x"), "")
	expect(t, 404, "GET", srv.StreamURL("__ds/elsewhere"), "")
	expect(t, 404, "GET", srv.StreamURL("__ds"), "")
	expect(t, 400, "PUT", srv.StreamURL("__ds/subscriptions/x"), "data", "Content-Type", "text/plain")
	resp, _ := expect(t, 405, "PATCH", srv.StreamURL("x"), "")
	if !strings.Contains(resp.Header.Get("Allow"), "GET") {
		t.Errorf("Allow: %q", resp.Header.Get("Allow"))
	}
	resp, _ = expect(t, http.StatusNoContent, "OPTIONS", srv.StreamURL("x"), "")
	header(t, resp, "Access-Control-Allow-Origin", "*")
}
