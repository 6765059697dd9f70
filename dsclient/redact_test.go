package dsclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// 11.8: credentials in a stream URL's user info, and tokens in its query, are sent on the
// wire but never shown: not by Stream.URL, not in any error (invalid URL, network, status,
// parse, offset), not in any observer event.
func TestCredentialsNeverShown(t *testing.T) {
	const user, secret, token = "alice", "s3cr3t-pw", "t0k3n-q"
	noSecret := func(t *testing.T, what, s string) {
		t.Helper()
		for _, x := range []string{secret, token, user + ":"} {
			if strings.Contains(s, x) {
				t.Fatalf("%s shows a credential (%q): %s", what, x, s)
			}
		}
	}
	raw := "http://" + user + ":" + secret + "@inproc.test/v1/stream/x?token=" + token

	// Invalid URLs, whose parse error repeats the raw URL.
	for _, bad := range []string{
		"http://" + user + ":" + secret + "@[::1/v1/stream/x?token=" + token,
		"http://" + user + ":" + secret + "@host:port/x?token=" + token,
		"ftp://" + user + ":" + secret + "@host/x",
	} {
		s := ds.NewStream(bad)
		_, err := s.Head(context.Background())
		if !errors.Is(err, ds.ErrInvalidArgument) {
			t.Fatalf("%s: %v", bad, err)
		}
		noSecret(t, "invalid-URL error", err.Error())
		noSecret(t, "URL() of an invalid URL", s.URL())
	}

	// Network errors: the HTTP client's own error repeats the request URL, query included.
	obs := &events{}
	s := ds.NewStream("http://"+user+":"+secret+"@127.0.0.1:1/v1/stream/x?token="+token, ds.WithObserver(obs), exactRetry(2))
	_, err := s.Head(context.Background())
	if !errors.Is(err, ds.ErrNetwork) {
		t.Fatalf("head on a closed port: %v", err)
	}
	noSecret(t, "network error", err.Error())
	noSecret(t, "observer events", obs.text())

	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var auth, tok []string
		n := 0
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auth = append(auth, r.Header.Get("Authorization"))
			tok = append(tok, r.URL.Query().Get("token"))
			n++
			k := n
			mu.Unlock()
			switch {
			case r.Method == http.MethodHead:
				w.WriteHeader(http.StatusNotFound)
			case k == 2:
				http.Error(w, "busy", http.StatusServiceUnavailable)
			case k == 3:
				protoHeaders(w, "application/json", "0_00001", false, false)
				io.WriteString(w, `[{"n":0}]`)
			case k == 4: // backwards
				protoHeaders(w, "application/json", "0_00000", false, false)
				io.WriteString(w, `[{"n":0}]`)
			default: // malformed
				protoHeaders(w, "application/json", "0_00002", true, true)
				io.WriteString(w, `[{"n":1} x]`)
			}
		})
		obs := &events{}
		s := ds.NewStream(raw, ds.WithHTTPClient(&http.Client{Transport: dstest.NewTransport(h)}), ds.WithObserver(obs), exactRetry(0))
		if got := s.URL(); got != "http://inproc.test/v1/stream/x" {
			t.Fatalf("URL() = %q", got)
		}
		var errs []error
		if _, err := s.Head(context.Background()); err != nil {
			errs = append(errs, err)
		}
		c, err := ds.NewConsumer(s, ds.ConsumerOptions{Handler: func(context.Context, ds.ConsumerBatch) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Run(context.Background()); err != nil {
			errs = append(errs, err)
		}
		if len(errs) != 2 || !errors.Is(errs[0], ds.ErrNotFound) || !errors.Is(errs[1], ds.ErrParse) {
			t.Fatalf("errors %v", errs)
		}
		for _, err := range errs {
			noSecret(t, "error", fmt.Sprintf("%v %+v", err, err))
		}
		for _, kind := range []string{"start", "done", "retry", "rejected", "chunk", "batch"} {
			if obs.count(kind) == 0 {
				t.Fatalf("no %s event:\n%s", kind, obs.text())
			}
		}
		noSecret(t, "observer events", obs.text())
		// On the wire: basic authentication and the query token, on every request.
		for i := range auth {
			if auth[i] != "Basic YWxpY2U6czNjcjN0LXB3" || tok[i] != token {
				t.Fatalf("request %d sent Authorization %q, token %q", i, auth[i], tok[i])
			}
		}
	})
}
