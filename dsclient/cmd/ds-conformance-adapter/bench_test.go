package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/refserver"
)

// recording is an http.RoundTripper that records every request it carries ("METHOD path",
// with " live=MODE" for a live read) and what each response body delivered.
type recording struct {
	prefix string // the server's stream prefix, left out of the lines
	mu     sync.Mutex
	reqs   []*recorded
}

type recorded struct {
	line string
	mu   sync.Mutex
	body bytes.Buffer // what the caller read of the response body
}

func (r *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	line := req.Method + " " + strings.TrimPrefix(req.URL.Path, r.prefix)
	if live := req.URL.Query().Get("live"); live != "" {
		line += " live=" + live
	}
	rec := &recorded{line: line}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = &teeBody{ReadCloser: resp.Body, rec: rec}
	}
	return resp, err
}

type teeBody struct {
	io.ReadCloser
	rec *recorded
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.rec.mu.Lock()
	t.rec.body.Write(p[:n])
	t.rec.mu.Unlock()
	return n, err
}

// take returns the requests recorded since the last call and forgets them.
func (r *recording) take() []*recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

func lines(rs []*recorded) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.line)
	}
	return out
}

// benchAdapter returns an adapter initialised against base (the server's stream root) whose
// every request goes through the returned recorder.
func benchAdapter(t *testing.T, base string) (*adapter, *recording) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recording{prefix: u.Path}
	a := newAdapter()
	t.Cleanup(a.shutdown)
	c, err := ds.NewClient(ds.WithHTTPClient(&http.Client{Transport: rec}))
	if err != nil {
		t.Fatal(err)
	}
	a.client = c
	if res := run(t, a, fmt.Sprintf(`{"type":"init","serverUrl":%q}`, base)); res["success"] != true {
		t.Fatalf("init: %v", res)
	}
	rec.take()
	return a, rec
}

func benchmarkOp(t *testing.T, a *adapter, op string) map[string]any {
	t.Helper()
	res := run(t, a, `{"type":"benchmark","iterationId":"i","operation":`+op+`}`)
	if res["success"] != true || res["type"] != "benchmark" {
		t.Fatalf("benchmark %s: %v", op, res)
	}
	return res
}

// setup prepares a stream the way the suite's runner does before a scenario (its
// benchmark-runner.ts), with a client of its own whose requests are not recorded.
func setup(t *testing.T, base, path, ct string, bodies ...[]byte) {
	t.Helper()
	ctx := context.Background()
	s := ds.NewStream(base+path, ds.WithContentType(ct))
	if _, err := s.Create(ctx, ds.CreateOptions{ContentType: ct}); err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		if _, err := s.Append(ctx, b, ds.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// Each benchmark operation makes exactly the requests of the suite's scenario that names it
// (packages/client-conformance-tests/src/benchmark-scenarios.ts), in that order, against the
// in-process server and the reference server.
func TestBenchmarkOperationsMakeTheirScenariosRequests(t *testing.T) {
	t.Run("dstest", func(t *testing.T) {
		srv := dstest.ForTest(t, dstest.Options{})
		testBenchmarkOperations(t, strings.TrimSuffix(srv.StreamURL(""), "/"))
	})
	t.Run("refserver", func(t *testing.T) {
		srv := refserver.ForTest(t, refserver.Options{LongPollTimeout: 5 * time.Second})
		testBenchmarkOperations(t, strings.TrimSuffix(srv.StreamURL(""), "/"))
	})
}

func testBenchmarkOperations(t *testing.T, base string) {
	a, rec := benchAdapter(t, base)

	t.Run("latency-create", func(t *testing.T) {
		benchmarkOp(t, a, `{"op":"create","path":"/b/create-0","contentType":"application/octet-stream"}`)
		if got, want := lines(rec.take()), []string{"PUT /b/create-0"}; !slices.Equal(got, want) {
			t.Fatalf("requests %q, want %q", got, want)
		}
	})

	t.Run("latency-append", func(t *testing.T) {
		// The runner creates the stream; every iteration is one append.
		setup(t, base, "/b/stream", "application/octet-stream")
		for range 3 {
			res := benchmarkOp(t, a, `{"op":"append","path":"/b/stream","size":100}`)
			if got, want := lines(rec.take()), []string{"POST /b/stream"}; !slices.Equal(got, want) {
				t.Fatalf("requests %q, want %q", got, want)
			}
			if m := res["metrics"].(map[string]any); m["bytesTransferred"] != 100.0 {
				t.Fatalf("metrics %v", m)
			}
		}
		info, err := ds.NewStream(base+"/b/stream").ReadAll(context.Background(), ds.ReadOptions{})
		if err != nil || len(info.Data) != 300 {
			t.Fatalf("stream holds %d bytes (%v), want the 3 appends of 100", len(info.Data), err)
		}
	})

	t.Run("latency-read", func(t *testing.T) {
		// The runner fills the stream with 10 appends of 1 KiB; an iteration is one read.
		var kib [][]byte
		for range 10 {
			kib = append(kib, bytes.Repeat([]byte{42}, 1024))
		}
		setup(t, base, "/b/read", "application/octet-stream", kib...)
		res := benchmarkOp(t, a, `{"op":"read","path":"/b/read"}`)
		if got, want := lines(rec.take()), []string{"GET /b/read"}; !slices.Equal(got, want) {
			t.Fatalf("requests %q, want %q", got, want)
		}
		if m := res["metrics"].(map[string]any); m["bytesTransferred"] != 10240.0 {
			t.Fatalf("metrics %v", m)
		}
	})

	// Roundtrip: the iteration's stream is created, a live read is started from its tail,
	// and the append is sent only once that read's request is on the wire; the time ends
	// when the appended data arrives through the live request.
	for _, tc := range []struct {
		scenario, op string
		want         []string
	}{
		{"latency-roundtrip", `{"op":"roundtrip","path":"/b/roundtrip-0","size":100,"live":"long-poll"}`,
			[]string{"PUT /b/roundtrip-0", "GET /b/roundtrip-0 live=long-poll", "POST /b/roundtrip-0"}},
		// The client's SSE read starts with one catch-up request (at the tail of a new stream
		// it answers at once, empty and up to date), as the reference client's does.
		{"streaming-sse-latency", `{"op":"roundtrip","path":"/b/sse-latency-0","size":100,"live":"sse","contentType":"application/json"}`,
			[]string{"PUT /b/sse-latency-0", "GET /b/sse-latency-0", "GET /b/sse-latency-0 live=sse", "POST /b/sse-latency-0"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			for i := range 3 {
				op := strings.ReplaceAll(tc.op, "-0", fmt.Sprintf("-%d", i))
				res := benchmarkOp(t, a, op)
				reqs := rec.take()
				want := make([]string, len(tc.want))
				for k, w := range tc.want {
					want[k] = strings.ReplaceAll(w, "-0", fmt.Sprintf("-%d", i))
				}
				if got := lines(reqs); !slices.Equal(got, want) {
					t.Fatalf("requests %q, want %q", got, want)
				}
				// The appended data came through the live request, not through a read after it.
				live := reqs[len(reqs)-2]
				live.mu.Lock()
				body := live.body.String()
				live.mu.Unlock()
				if !strings.Contains(body, strings.Repeat("*", 98)) {
					t.Fatalf("the live request %q delivered %q, not the appended data", live.line, body)
				}
				if m := res["metrics"].(map[string]any); m["bytesTransferred"].(float64) <= 100 {
					t.Fatalf("metrics %v", m)
				}
			}
		})
	}

	t.Run("throughput-small-messages", func(t *testing.T) {
		// The runner does not create this stream: the first iteration does, the next ones
		// only append.
		const n = 2000
		for i := range 2 {
			res := benchmarkOp(t, a, fmt.Sprintf(`{"op":"throughput_append","path":"/b/throughput-small","count":%d,"size":100,"concurrency":200}`, n))
			got := lines(rec.take())
			posts := 0
			for _, l := range got {
				if l == "POST /b/throughput-small" {
					posts++
				}
			}
			wantFirst := []string{}
			if i == 0 {
				wantFirst = []string{"PUT /b/throughput-small"}
			}
			if !slices.Equal(got[:len(wantFirst)], wantFirst) || posts != len(got)-len(wantFirst) || posts == 0 {
				t.Fatalf("iteration %d: requests %q, want %q then POSTs only", i, got, wantFirst)
			}
			if m := res["metrics"].(map[string]any); m["messagesProcessed"] != float64(n) {
				t.Fatalf("metrics %v", m)
			}
		}
		info, err := ds.NewStream(base+"/b/throughput-small").ReadAll(context.Background(), ds.ReadOptions{})
		if err != nil || len(info.Data) != 2*n*100 {
			t.Fatalf("stream holds %d bytes (%v), want %d", len(info.Data), err, 2*n*100)
		}
	})

	t.Run("throughput-read", func(t *testing.T) {
		// The runner fills a JSON stream; an iteration reads it to the tail, decoding every
		// message.
		const n = 1000
		var items []string
		for i := range n {
			b, _ := json.Marshal(map[string]any{"n": i, "data": fmt.Sprintf("message-%d-padding-for-size", i)})
			items = append(items, string(b))
		}
		setup(t, base, "/b/throughput-read", "application/json", []byte("["+strings.Join(items, ",")+"]"))
		res := benchmarkOp(t, a, `{"op":"throughput_read","path":"/b/throughput-read","expectedCount":1000}`)
		if got, want := lines(rec.take()), []string{"GET /b/throughput-read"}; !slices.Equal(got, want) {
			t.Fatalf("requests %q, want %q", got, want)
		}
		if m := res["metrics"].(map[string]any); m["messagesProcessed"] != float64(n) {
			t.Fatalf("metrics %v", m)
		}
	})
}
