package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/metrics"
)

func newClient(t *testing.T, m *metrics.Metrics) *dsclient.Client {
	t.Helper()
	rp := dsclient.DefaultRetryPolicy()
	rp.InitialDelay, rp.MaxDelay = time.Millisecond, time.Millisecond
	c, err := dsclient.NewClient(dsclient.WithObserver(m), dsclient.WithRetry(rp))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Appends, a read, a missing stream and a retried 503 against the in-process server.
func TestClientMetrics(t *testing.T) {
	ctx := context.Background()
	srv := dstest.ForTest(t, dstest.Options{})
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "client"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, m)
	s := c.Stream(srv.StreamURL("orders"))
	if _, err := s.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.AppendJSON(ctx, map[string]int{"id": i}, dsclient.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// One transient failure on a read: retried once.
	if err := srv.InjectFault("/v1/stream/orders", dstest.Fault{Method: "GET", Status: 503}); err != nil {
		t.Fatal(err)
	}
	items, _, err := dsclient.ReadJSON[map[string]int](ctx, s, dsclient.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("read %d items, want 3", len(items))
	}
	if _, err := c.Stream(srv.StreamURL("missing")).Head(ctx); !errors.Is(err, dsclient.ErrNotFound) {
		t.Fatalf("Head of a missing stream: %v, want ErrNotFound", err)
	}

	got := scrape(t, reg)
	expect(t, got, map[string]float64{
		"sluice_ds_requests_total{op=create,status=201}":      1,
		"sluice_ds_requests_total{op=append,status=204}":      3,
		"sluice_ds_requests_total{op=read,status=503}":        1,
		"sluice_ds_requests_total{op=read,status=200}":        1,
		"sluice_ds_requests_total{op=head,status=404}":        1,
		"sluice_ds_retries_total{op=read}":                    1,
		"sluice_ds_request_duration_seconds_count{op=append}": 3,
		"sluice_ds_request_duration_seconds_count{op=read}":   2,
		"sluice_ds_requests_in_flight{op=append}":             0,
		"sluice_ds_requests_in_flight{op=read}":               0,
		"sluice_ds_chunks_total":                              1,
		"sluice_ds_read_items_total":                          3,
	})
	// A whole-body read counts the body's bytes.
	res, err := s.ReadAll(ctx, dsclient.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got = scrape(t, reg)
	if n := got["sluice_ds_read_bytes_total"]; n < float64(len(res.Data)) || len(res.Data) == 0 {
		t.Errorf("sluice_ds_read_bytes_total = %v after reading %d bytes", n, len(res.Data))
	}
	expect(t, got, map[string]float64{"sluice_ds_chunks_total": 2})
}

// A Writer's batches, and one sent again after a restart of the same epoch and sequence,
// which the server finds duplicate.
func TestWriterMetrics(t *testing.T) {
	ctx := context.Background()
	srv := dstest.ForTest(t, dstest.Options{})
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, m)
	s := c.Stream(srv.StreamURL("events"))
	if _, err := s.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	// The second writer's first append is stored, but its answer is lost: the writer sends the
	// batch again and the server answers it is a duplicate, stored once.
	lossy := &loseFirstAnswer{next: http.DefaultTransport}
	lc, err := dsclient.NewClient(dsclient.WithObserver(m), dsclient.WithHTTPClient(&http.Client{Transport: lossy}))
	if err != nil {
		t.Fatal(err)
	}
	write := func(contentType string, s *dsclient.Stream) error {
		opts := dsclient.DefaultWriterOptions("p1")
		opts.Linger = time.Hour // one batch, sent by Close
		opts.ContentType = contentType
		w, err := dsclient.NewWriter(s, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{`{"a":1}`, `{"b":2}`} {
			if err := w.Append(ctx, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		return w.Close(ctx)
	}
	if err := write("application/json", s); err != nil {
		t.Fatal(err)
	}
	if err := write("application/json", lc.Stream(srv.StreamURL("events"))); err != nil {
		t.Fatal(err)
	}
	// A content type the stream refuses: the batch fails (409, not retried).
	if err := write("text/plain", s); !errors.Is(err, dsclient.ErrConflict) {
		t.Fatalf("write with the wrong content type: %v, want ErrConflict", err)
	}
	expect(t, scrape(t, reg), map[string]float64{
		"sluice_ds_writer_batches_total{result=acked}":     1,
		"sluice_ds_writer_batches_total{result=duplicate}": 1,
		"sluice_ds_writer_batches_total{result=error}":     1,
		"sluice_ds_writer_items_total":                     4,
		"sluice_ds_writer_bytes_total":                     2 * float64(len(`[{"a":1},{"b":2}]`)),
		"sluice_ds_writer_batch_duration_seconds_count":    3,
		"sluice_ds_requests_total{op=append,status=200}":   1,
		"sluice_ds_requests_total{op=append,status=204}":   1,
		"sluice_ds_requests_total{op=append,status=409}":   1,
	})
}

// loseFirstAnswer is a transport that loses the answer of the first append it carries, after
// the server stored it.
type loseFirstAnswer struct {
	next http.RoundTripper
	once sync.Once
}

func (l *loseFirstAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost {
		return resp, err
	}
	lost := false
	l.once.Do(func() { lost = true })
	if lost {
		resp.Body.Close()
		return nil, errors.New("connection reset after the request was stored")
	}
	return resp, nil
}

// A response whose next offset goes backwards is refused by the read and counted.
func TestOffsetsRejectedMetric(t *testing.T) {
	const asked = "0000000000000000_0000000000000010"
	var calls atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Stream-Up-To-Date", "true")
		if calls.Add(1) == 1 {
			w.Header().Set("Stream-Next-Offset", "0000000000000000_0000000000000005") // backwards
			io.WriteString(w, `[{"a":1}]`)
			return
		}
		w.Header().Set("Stream-Next-Offset", asked)
		io.WriteString(w, `[]`)
	}))
	defer hs.Close()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "offsets"})
	if err != nil {
		t.Fatal(err)
	}
	s := newClient(t, m).Stream(hs.URL + "/v1/stream/s")
	items, _, err := dsclient.ReadJSON[map[string]int](context.Background(), s, dsclient.ReadOptions{Offset: asked})
	if err != nil || len(items) != 0 {
		t.Fatalf("read: %v, %v; want nothing, the regressing response refused", items, err)
	}
	expect(t, scrape(t, reg), map[string]float64{"sluice_ds_offsets_rejected_total{live=off}": 1})
}
