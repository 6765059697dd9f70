package dstest

import (
	"strings"
	"testing"
)

func TestCreateStatuses(t *testing.T) {
	srv := newTestServer(t, Options{})
	for _, tc := range []struct {
		name    string
		headers []string
		body    string
		want    int
	}{
		{"plain", nil, "", 201},
		{"no content type means octet-stream", []string{"Content-Type", ""}, "", 201},
		{"ttl", []string{"Stream-TTL", "3600"}, "", 201},
		{"ttl zero", []string{"Stream-TTL", "0"}, "", 201},
		{"ttl leading zero", []string{"Stream-TTL", "0360"}, "", 400},
		{"ttl plus", []string{"Stream-TTL", "+360"}, "", 400},
		{"ttl negative", []string{"Stream-TTL", "-1"}, "", 400},
		{"ttl float", []string{"Stream-TTL", "3.5"}, "", 400},
		{"ttl exponent", []string{"Stream-TTL", "1e3"}, "", 400},
		{"ttl huge", []string{"Stream-TTL", "99999999999999999999999"}, "", 400},
		{"expires", []string{"Stream-Expires-At", "2099-01-01T00:00:00Z"}, "", 201},
		{"expires with offset", []string{"Stream-Expires-At", "2099-01-01T00:00:00.123+02:00"}, "", 201},
		{"expires malformed", []string{"Stream-Expires-At", "tomorrow"}, "", 400},
		{"ttl and expires", []string{"Stream-TTL", "10", "Stream-Expires-At", "2099-01-01T00:00:00Z"}, "", 400},
		{"json initial body", []string{"Content-Type", "application/json"}, `[{"a":1},{"b":2}]`, 201},
		{"json empty array", []string{"Content-Type", "application/json"}, `[]`, 201},
		{"json invalid", []string{"Content-Type", "application/json"}, `{"a":`, 400},
		{"closed", []string{"Stream-Closed", "TRUE"}, "done", 201},
		{"sub-offset without fork", []string{"Stream-Fork-Sub-Offset", "0"}, "", 400},
		{"fork offset malformed", []string{"Stream-Forked-From", "/v1/stream/x", "Stream-Fork-Offset", "abc"}, "", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := srv.StreamURL("create-" + strings.ReplaceAll(tc.name, " ", "-"))
			expect(t, tc.want, "PUT", u, tc.body, tc.headers...)
		})
	}
	max := Options{MaxBodyBytes: 10}
	small := newTestServer(t, max)
	expect(t, 413, "PUT", small.StreamURL("big"), "01234567890")
}

func TestCreateIdempotence(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("idem")
	expect(t, 201, "PUT", u, "", "Content-Type", "application/json", "Stream-TTL", "60")
	resp, _ := expect(t, 200, "PUT", u, "", "Content-Type", "APPLICATION/JSON; charset=utf-8", "Stream-TTL", "60")
	noHeader(t, resp, "Location")
	expect(t, 409, "PUT", u, "", "Content-Type", "application/json", "Stream-TTL", "61")
	expect(t, 409, "PUT", u, "", "Content-Type", "application/json")
	expect(t, 409, "PUT", u, "", "Content-Type", "text/plain", "Stream-TTL", "60")
	expect(t, 409, "PUT", u, "", "Content-Type", "application/json", "Stream-TTL", "60", "Stream-Closed", "true")

	// Closure is compared with the stream's current state.
	c := srv.StreamURL("idem-closed")
	expect(t, 201, "PUT", c, "", "Content-Type", "text/plain")
	expect(t, 204, "POST", c, "", "Stream-Closed", "true")
	expect(t, 409, "PUT", c, "", "Content-Type", "text/plain")
	resp, _ = expect(t, 200, "PUT", c, "", "Content-Type", "text/plain", "Stream-Closed", "true")
	header(t, resp, "Stream-Closed", "true")
}

func TestCreateClosedWithBody(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("final")
	resp, _ := expect(t, 201, "PUT", u, "the end", "Content-Type", "text/plain", "Stream-Closed", "true")
	header(t, resp, "Stream-Closed", "true")
	tail := resp.Header.Get("Stream-Next-Offset")
	resp, body := expect(t, 200, "GET", u, "")
	if body != "the end" {
		t.Fatalf("body %q", body)
	}
	header(t, resp, "Stream-Closed", "true")
	header(t, resp, "Stream-Next-Offset", tail)
	expect(t, 409, "POST", u, "more", "Content-Type", "text/plain")
}
