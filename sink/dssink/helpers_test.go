package dssink_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/refserver"
	"github.com/sluice-go/sluice/pipeline"
)

// out is the item the tests' sinks append: the source position it came from and a payload.
type out struct {
	Stream string `json:"stream"`
	Pos    int64  `json:"pos"`
	V      int    `json:"v"`
}

// valueOf is the tests' Value function.
func valueOf(m *pipeline.Message[int]) (any, error) {
	return out{Stream: m.Metadata.Stream, Pos: m.Metadata.Position, V: m.Data}, nil
}

// batchOf returns messages of source stream src at the given positions, with data
// 10×position.
func batchOf(src string, positions ...int64) []pipeline.Message[int] {
	ms := make([]pipeline.Message[int], len(positions))
	for i, p := range positions {
		ms[i] = pipeline.NewMessage(int(p)*10, nil, ack.Ref{})
		ms[i].Metadata = pipeline.Metadata{Stream: src, Position: p}
	}
	return ms
}

// span returns the positions from..to, inclusive.
func span(from, to int64) []int64 {
	var ps []int64
	for p := from; p <= to; p++ {
		ps = append(ps, p)
	}
	return ps
}

// readOut reads every item of the output stream.
func readOut(t testing.TB, s *dsclient.Stream) []out {
	t.Helper()
	items, _, err := dsclient.ReadJSON[out](context.Background(), s, dsclient.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// checkOut checks that the output holds, for each source stream, the items of exactly the
// given positions, once each, in order.
func checkOut(t testing.TB, s *dsclient.Stream, want map[string][]int64) {
	t.Helper()
	got := map[string][]int64{}
	for _, it := range readOut(t, s) {
		if it.V != int(it.Pos)*10 {
			t.Fatalf("item %+v: payload is not its message's", it)
		}
		got[it.Stream] = append(got[it.Stream], it.Pos)
	}
	for src, ps := range want {
		if len(got[src]) != len(ps) {
			t.Fatalf("stream %q: output positions %v, want %v", src, got[src], ps)
		}
		for i := range ps {
			if got[src][i] != ps[i] {
				t.Fatalf("stream %q: output positions %v, want %v", src, got[src], ps)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("output streams %v, want %v", got, want)
	}
}

// failed returns the positions of the failed messages, and whether every failure is
// permanent.
func failed(ms []pipeline.Message[int]) (ps []int64, permanent bool) {
	permanent = true
	for i := range ms {
		if ms[i].Failed() {
			ps = append(ps, ms[i].Metadata.Position)
			permanent = permanent && pipeline.IsPermanent(ms[i].Err())
		}
	}
	return ps, permanent
}

// jsonStream creates a JSON stream at url and returns its handle.
func jsonStream(t testing.TB, url string, opts ...dsclient.Option) *dsclient.Stream {
	t.Helper()
	s := dsclient.NewStream(url, append([]dsclient.Option{dsclient.WithContentType("application/json")}, opts...)...)
	if _, err := s.Create(context.Background(), dsclient.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

// name returns a unique stream name.
func name(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	return t.Name() + "-" + hex.EncodeToString(b[:])
}

// TestMain stops the shared reference server.
func TestMain(m *testing.M) {
	code := m.Run()
	refserver.StopShared()
	os.Exit(code)
}

// ref returns the shared reference server, skipping the test when Node is unavailable and
// not required.
func ref(t testing.TB) *refserver.Server {
	t.Helper()
	return refserver.Shared(t, refserver.Options{LongPollTimeout: 500 * time.Millisecond})
}
