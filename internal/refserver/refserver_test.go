package refserver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStartCreateAppendRead(t *testing.T) {
	s := ForTest(t, Options{LongPollTimeout: 500 * time.Millisecond})
	ctx := context.Background()
	u := s.StreamURL("refserver-smoke")
	do := func(method, url, body string, want int) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d", method, url, resp.StatusCode, want)
		}
		return resp
	}
	do(http.MethodPut, u, "", http.StatusCreated).Body.Close()
	do(http.MethodPost, u, "hello", http.StatusNoContent).Body.Close()
	resp := do(http.MethodGet, u+"?offset=-1", "", http.StatusOK)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("read %q, want %q", b, "hello")
	}
	if err := s.InjectFault(ctx, Fault{Path: "/v1/stream/refserver-smoke", Status: 503, Count: 1}); err != nil {
		t.Fatal(err)
	}
	do(http.MethodGet, u+"?offset=-1", "", http.StatusServiceUnavailable).Body.Close()
	do(http.MethodGet, u+"?offset=-1", "", http.StatusOK).Body.Close()
}
