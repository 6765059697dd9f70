package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/bench/internal/decoders"
	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

func fillTest(t *testing.T, srv *dstest.Server, n, perAppend int) string {
	t.Helper()
	u := srv.StreamURL(t.Name())
	if err := dsload.Fill(context.Background(), dsclient.NewStream(u), n, perAppend); err != nil {
		t.Fatal(err)
	}
	return u
}

// Every reader reads every event exactly once, with the exact sum, over a stream served in
// several responses.
func TestReadersExactlyOnce(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 16 << 10})
	const n = 3000
	u := fillTest(t, srv, n, 250)
	for _, rd := range readersFor(decoders.All()) {
		tl := newTally(n)
		if err := rd.run(context.Background(), u, tl); err != nil {
			t.Fatalf("%s: %v", rd.name, err)
		}
		if err := tl.verdict(); err != nil {
			t.Fatalf("%s: %v", rd.name, err)
		}
	}
}

// The tally rejects every breach of exactly-once.
func TestTallyCatchesBreaches(t *testing.T) {
	const n = 10
	good := func() *tally {
		tl := newTally(n)
		for i := range int64(n) {
			e := dsload.NewEvent(i)
			tl.add(&e)
		}
		return tl
	}
	if err := good().verdict(); err != nil {
		t.Fatalf("a good run judged invalid: %v", err)
	}
	if got := dsload.SumQuarters(2500); got != 2*499500+500*499/2 {
		t.Fatalf("SumQuarters(2500) = %d", got)
	}
	cases := map[string]func(tl *tally){
		"twice":        func(tl *tally) { e := dsload.NewEvent(3); tl.add(&e) },
		"out of range": func(tl *tally) { e := dsload.NewEvent(n); tl.add(&e) },
		"wrong amount": func(tl *tally) { tl.mu.Lock(); tl.quarters++; tl.mu.Unlock() },
		"inexact":      func(tl *tally) { tl.mu.Lock(); tl.addLocked(99, 0.1); tl.mu.Unlock() },
	}
	for name, breach := range cases {
		tl := good()
		breach(tl)
		if err := tl.verdict(); err == nil {
			t.Errorf("%s: judged valid", name)
		}
		if err := tl.partial(); err == nil {
			t.Errorf("%s: partial check judged valid", name)
		}
	}
	missing := newTally(n)
	e := dsload.NewEvent(0)
	missing.add(&e)
	if err := missing.verdict(); err == nil || !strings.Contains(err.Error(), "1 events seen") {
		t.Errorf("missing events: verdict %v", err)
	}
	if err := missing.partial(); err != nil {
		t.Errorf("missing events, partial check: %v", err)
	}
}

// The slow-sink run stops after its limit, long before the end of the stream, having handled
// each event at most once.
func TestSlowSinkStopsAtLimit(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	const n = 20000
	u := fillTest(t, srv, n, 5000)
	res := runSlowSink(context.Background(), u, slowSink{N: n, Limit: 2000, Delay: time.Millisecond, Timeout: time.Minute})
	if res.Err != "" {
		t.Fatal(res.Err)
	}
	if res.Seen < 2000 || res.Seen >= n {
		t.Fatalf("handled %d events, want at least the limit 2000 and fewer than the %d in the stream", res.Seen, n)
	}
}

// Live runs in both modes deliver every append once, with plausible latencies.
func TestLatencyRuns(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	for _, mode := range []dsclient.LiveMode{dsclient.LiveSSE, dsclient.LiveLongPoll} {
		t.Run(mode.String(), func(t *testing.T) {
			const n = 30
			res, err := runLatency(context.Background(), srv.StreamURL(t.Name()), mode, n, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.sorted) != n || res.p(0.001) <= 0 || res.p(50) > res.p(100) {
				t.Fatalf("latencies %v", res.sorted)
			}
		})
	}
}
