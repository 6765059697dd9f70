package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dsclient"
)

// expected computes the windows of the generated events independently of the pipeline.
func expected(events []Event, size time.Duration) map[string]Window {
	ms := size.Milliseconds()
	vals := map[string][]float64{}
	out := map[string]Window{}
	for _, e := range events {
		start := e.TS - e.TS%ms
		k := fmt.Sprintf("%s@%d", e.Type, start)
		w := out[k]
		w.Key, w.Start, w.End = e.Type, start, start+ms
		w.Count++
		w.Sum += e.Latency
		out[k] = w
		vals[k] = append(vals[k], e.Latency)
	}
	for k, w := range out {
		w.P95 = p95(vals[k])
		out[k] = w
	}
	return out
}

// A short live run: every generated event is counted in exactly one window of the output
// stream, each window's count, sum and p95 match an independent computation, and /metrics
// serves the pipeline's counters.
func TestWindowsToOutputStream(t *testing.T) {
	for _, live := range []dsclient.LiveMode{dsclient.LiveSSE, dsclient.LiveLongPoll} {
		t.Run(live.String(), func(t *testing.T) {
			var out bytes.Buffer
			cfg := Config{Duration: 1200 * time.Millisecond, Rate: 3000, Window: 200 * time.Millisecond, Live: live, Metrics: "127.0.0.1:0"}
			res, err := run(t.Context(), cfg, &out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if len(res.Generated) < 1000 {
				t.Fatalf("only %d events generated", len(res.Generated))
			}
			want := expected(res.Generated, cfg.Window)
			if len(res.Windows) != len(want) {
				t.Fatalf("%d windows in the output stream, want %d", len(res.Windows), len(want))
			}
			total := 0
			for _, w := range res.Windows {
				k := fmt.Sprintf("%s@%d", w.Key, w.Start)
				e, ok := want[k]
				if !ok || e.Count != w.Count || e.End != w.End || e.P95 != w.P95 || fmt.Sprintf("%.3f", e.Sum) != fmt.Sprintf("%.3f", w.Sum) {
					t.Fatalf("window %s: got %+v, want %+v", k, w, e)
				}
				delete(want, k)
				total += w.Count
			}
			if total != len(res.Generated) {
				t.Fatalf("windows count %d events, %d generated", total, len(res.Generated))
			}
			resp, err := http.Get("http://" + res.MetricsAddr + "/metrics")
			if err == nil {
				// The server is closed when run returns: reaching it would be a leak.
				resp.Body.Close()
				t.Fatal("the metrics server outlived the run")
			}
		})
	}
}

// /metrics answers while the pipeline runs.
func TestMetricsWhileRunning(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close() // after a failure: run's writes fail rather than wait
	done := make(chan error, 1)
	go func() {
		_, err := run(t.Context(), Config{Duration: 2 * time.Second, Rate: 500, Window: 100 * time.Millisecond, Live: dsclient.LiveSSE, Metrics: "127.0.0.1:0"}, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	buf := make([]byte, 4096)
	n, _ := pr.Read(buf) // the first line names the metrics address
	line := string(buf[:n])
	addr, ok := strings.CutPrefix(strings.TrimSpace(strings.SplitN(line, "\n", 2)[0]), "metrics: ")
	if !ok {
		t.Fatalf("first line %q does not give the metrics address", line)
	}
	// Until the rest of the output is read, run waits to write its next line: the pipeline
	// is set up and its metrics server cannot have closed.
	resp, err := http.Get(addr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	go io.Copy(io.Discard, pr)
	for _, want := range []string{`sluice_ds_requests_total{`, `pipeline="analytics"`, "sluice_ds_producer_at_tail"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
