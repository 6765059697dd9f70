package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-go/sluice/dsclient/dstest"
)

// TestMain lets the test binary serve as the crash child, as the benchmark binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-child-crash" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A crash round over one response: the first child is killed at half the stream, the second
// delivers the rest from the checkpoint, nothing is missing, and the redelivered count is
// what the two children delivered beyond the stream.
func TestCrashRound(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns two child processes over a 40,000-event stream")
	}
	srv := dstest.ForTest(t, dstest.Options{})
	const n = 40000
	u := fillTest(t, srv, n, 10000)
	res := runCrash(context.Background(), u, n, "std", 0)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.atKill < n/2 || res.first < res.atKill || res.second <= 0 || res.first+res.second < n {
		t.Fatalf("handled %d at kill, %d by the first child, %d by the second, of %d", res.atKill, res.first, res.second, n)
	}
	if res.redelivered != res.first+res.second-n || res.maxInFlight <= 0 || res.rate <= 0 || res.bound <= float64(res.maxInFlight) {
		t.Fatalf("round %+v", res)
	}
	if res.checkpoint.Seq > res.first {
		t.Fatalf("checkpoint at %d, past the %d events the first child handled", res.checkpoint.Seq, res.first)
	}
	// The target: what is delivered again is at most the in-flight bound plus one checkpoint
	// interval's worth of messages.
	if float64(res.redelivered) > res.bound {
		t.Fatalf("%d messages delivered again, more than the bound %.0f (in flight %d)", res.redelivered, res.bound, res.maxInFlight)
	}
}

// The frames survive a round trip, and the reader tallies and checks what they carry.
func TestCrashFramesAndTally(t *testing.T) {
	var buf bytes.Buffer
	ids := []int64{5, 1, 3, 0, 1000000}
	if err := writeFrame(&buf, frameBatch, encodeIDs(slices.Clone(ids))); err != nil {
		t.Fatal(err)
	}
	writeFrame(&buf, frameInfo, []byte(`{"max_in_flight":7}`))
	writeFrame(&buf, frameBatch, encodeIDs([]int64{2, 4}))
	writeFrame(&buf, frameBatch, encodeIDs([]int64{6}))
	cut := buf.Bytes()[:buf.Len()-1] // a killed child's last, cut frame
	counts := make([]uint8, 1000001)
	cr := &childReader{counts: counts}
	batches := 0
	if err := cr.read(bytes.NewReader(cut), func() { batches++ }); err != nil {
		t.Fatal(err)
	}
	if batches != 2 || cr.handled != 7 || cr.info.MaxInFlight != 7 || cr.dups != 0 {
		t.Fatalf("batches %d, handled %d, info %+v, dups %d", batches, cr.handled, cr.info, cr.dups)
	}
	if err := tallyVerdict(counts[:6], 0); err != nil {
		t.Fatalf("ids 0..5 all delivered: %v", err)
	}
	if err := tallyVerdict(counts[:7], 0); err == nil || !strings.Contains(err.Error(), "1 events never delivered") {
		t.Fatalf("id 6 missing: %v", err)
	}
	again := &childReader{counts: counts}
	var twice bytes.Buffer
	writeFrame(&twice, frameBatch, encodeIDs([]int64{1, 2}))
	writeFrame(&twice, frameBatch, encodeIDs([]int64{2}))
	if err := again.read(&twice, nil); err != nil || again.dups != 1 {
		t.Fatalf("a child delivering id 2 twice: dups %d, %v", again.dups, err)
	}
	if err := tallyVerdict(counts[:6], again.dups); err == nil {
		t.Fatal("a duplicate within one child judged valid")
	}
	counts[3] = 3
	if err := tallyVerdict(counts[:6], 0); err == nil {
		t.Fatal("three deliveries judged valid")
	}
}
