package dstest

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want []string // substrings of the error; none for valid options
	}{
		{"zero", Options{}, nil},
		{"custom", Options{Prefix: "/s/", LongPollTimeout: time.Second, SSELifetime: time.Minute, MaxChunkBytes: 1, MaxBodyBytes: 1, CursorInterval: time.Second}, nil},
		{"prefix without slashes", Options{Prefix: "streams"}, []string{"Options.Prefix"}},
		{"prefix without trailing slash", Options{Prefix: "/streams"}, []string{"Options.Prefix"}},
		{"negative durations", Options{LongPollTimeout: -1, SSELifetime: -1, CursorInterval: -1},
			[]string{"Options.LongPollTimeout", "Options.SSELifetime", "Options.CursorInterval"}},
		{"short cursor interval", Options{CursorInterval: time.Millisecond}, []string{"Options.CursorInterval"}},
		{"negative sizes", Options{MaxChunkBytes: -1, MaxBodyBytes: -1}, []string{"Options.MaxChunkBytes", "Options.MaxBodyBytes"}},
		{"body too large", Options{MaxBodyBytes: 2 << 30}, []string{"Options.MaxBodyBytes"}},
		{"short leases", Options{MinLeaseTTL: time.Millisecond, DefaultLeaseTTL: 5 * time.Millisecond, MaxLeaseTTL: time.Second}, nil},
		{"subscription durations", Options{MinLeaseTTL: -1, MaxLeaseTTL: time.Microsecond, DefaultLeaseTTL: -time.Second,
			TokenTTL: -1, WebhookTimeout: -1, WebhookRetryMin: -1, WebhookRetryMax: time.Nanosecond},
			[]string{"Options.MinLeaseTTL", "Options.MaxLeaseTTL", "Options.DefaultLeaseTTL", "Options.TokenTTL",
				"Options.WebhookTimeout", "Options.WebhookRetryMin", "Options.WebhookRetryMax"}},
		{"max lease below min", Options{MinLeaseTTL: time.Minute, MaxLeaseTTL: time.Second}, []string{"Options.MaxLeaseTTL"}},
		{"default lease outside", Options{MaxLeaseTTL: 10 * time.Second}, []string{"Options.DefaultLeaseTTL"}},
		{"retry max below min", Options{WebhookRetryMin: time.Minute, WebhookRetryMax: time.Second}, []string{"Options.WebhookRetryMax"}},
		{"signing key", Options{SigningKey: make([]byte, 10)}, []string{"Options.SigningKey"}},
		{"negative limits", Options{MaxSubscriptions: -1, MaxExplicitStreams: -1}, []string{"Options.MaxSubscriptions", "Options.MaxExplicitStreams"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHandler(tc.opts)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				o := h.Options()
				if o.Prefix == "" || o.LongPollTimeout <= 0 || o.CursorInterval <= 0 || o.MaxBodyBytes <= 0 ||
					o.MinLeaseTTL <= 0 || o.MaxLeaseTTL <= 0 || o.DefaultLeaseTTL <= 0 || o.TokenTTL <= 0 ||
					o.WebhookTimeout <= 0 || o.WebhookRetryMin <= 0 || o.WebhookRetryMax <= 0 ||
					o.MaxSubscriptions <= 0 || o.MaxExplicitStreams <= 0 {
					t.Fatalf("defaults not filled in: %+v", o)
				}
				h.Close()
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			var oe *OptionsError
			if !errors.As(err, &oe) || len(oe.Problems) != len(tc.want) {
				t.Fatalf("error %v: want an *OptionsError with %d problems", err, len(tc.want))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
	if _, err := NewServer(Options{Prefix: "x"}); err == nil {
		t.Error("NewServer accepted an invalid prefix")
	}
	if _, err := Listen("256.0.0.1:0", Options{}); err == nil {
		t.Error("Listen on an invalid address succeeded")
	}
}

func TestOptionsDefaults(t *testing.T) {
	h, err := NewHandler(Options{})
	must(t, err)
	defer h.Close()
	o := h.Options()
	if o.DefaultLeaseTTL != 30*time.Second || o.MinLeaseTTL != time.Second || o.MaxLeaseTTL != 10*time.Minute ||
		o.TokenTTL != time.Hour || o.WebhookTimeout != 30*time.Second || o.WebhookRetryMin != time.Second ||
		o.WebhookRetryMax != time.Minute || o.MaxSubscriptions != 10000 || o.MaxExplicitStreams != 10000 || o.DisableWebhooks {
		t.Fatalf("defaults %+v", o)
	}
}

func TestCustomPrefix(t *testing.T) {
	srv := newTestServer(t, Options{Prefix: "/streams/"})
	u := srv.StreamURL("a")
	if !strings.HasSuffix(u, "/streams/a") {
		t.Fatalf("StreamURL %q", u)
	}
	expect(t, 201, "PUT", u, "x")
	expect(t, 404, "GET", srv.URL+"/v1/stream/a", "")
	if _, body := expect(t, 200, "GET", u, ""); body != "x" {
		t.Fatalf("body %q", body)
	}
}

func TestLogger(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, nil))
	srv := newTestServer(t, Options{Logger: logger})
	expect(t, 201, "PUT", srv.StreamURL("logged"), "abc")
	expect(t, 404, "GET", srv.StreamURL("missing"), "")
	srv.Close() // every request has ended and logged
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{`"method":"PUT","path":"/v1/stream/logged"`, `"status":201`, `"path":"/v1/stream/missing"`, `"status":404`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
