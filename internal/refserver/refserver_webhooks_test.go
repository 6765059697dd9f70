package refserver

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Options.Webhooks turns on webhook subscriptions and Options.Host chooses the listening
// address, which the server's URL names.
func TestWebhooksAndHost(t *testing.T) {
	s := ForTest(t, Options{Webhooks: true, Host: "127.0.0.2"})
	u, err := url.Parse(s.URL)
	if err != nil || u.Hostname() != "127.0.0.2" {
		t.Fatalf("URL %q, want host 127.0.0.2 (%v)", s.URL, err)
	}
	body := `{"type":"webhook","pattern":"hooks/*","webhook":{"url":"http://127.0.0.1:9/hook"}}`
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, s.StreamURL("__ds/subscriptions/refserver-hooks"), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create webhook subscription: %d %s, want 201", resp.StatusCode, b)
	}
}
