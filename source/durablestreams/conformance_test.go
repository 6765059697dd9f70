package durablestreams_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/producer/producertest"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// conformanceItem is the data of the conformance fixtures' JSON streams.
type conformanceItem struct {
	N int `json:"n"`
}

// conformanceServer is an in-process server (no sockets, so nothing of it outlives a
// subtest but what the producer leaves) that counts the requests it serves: the fixtures'
// Activity.
type conformanceServer struct {
	h        *dstest.Handler
	client   *dsclient.Client
	requests atomic.Int64
}

const conformanceRoot = "http://dstest.invalid/v1/stream/"

// newConformanceServer returns a server whose reads return at most maxChunk stored bytes
// (0: no limit), closed when t ends.
func newConformanceServer(t testing.TB, maxChunk int) *conformanceServer {
	t.Helper()
	h, err := dstest.NewHandler(dstest.Options{LongPollTimeout: 10 * time.Second, MaxChunkBytes: maxChunk})
	if err != nil {
		t.Fatal(err)
	}
	s := &conformanceServer{h: h}
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h.ServeHTTP(w, r)
	})
	s.client, err = dsclient.NewClient(dsclient.WithHTTPClient(&http.Client{Transport: dstest.NewTransport(count)}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return s
}

// jsonStream creates the JSON stream name holding items first, first+1, …, first+n-1, three
// per append, and returns its handle and the items.
func (s *conformanceServer) jsonStream(t testing.TB, name string, first, n int) (*dsclient.Stream, []conformanceItem) {
	t.Helper()
	ctx := context.Background()
	st := s.client.Stream(conformanceRoot + name)
	if _, err := st.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	items := make([]conformanceItem, n)
	for i := range items {
		items[i] = conformanceItem{N: first + i}
	}
	for i := 0; i < n; i += 3 {
		if _, err := dsclient.AppendJSONBatch(ctx, st, items[i:min(i+3, n)], dsclient.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return st, items
}

// The single-stream producer, read to its tail (finite) and live (endless), from a server
// whose responses hold a few appends each, so that Produce calls cross responses.
func TestProducerConformance(t *testing.T) {
	features := producertest.Features{Ordered: true, Positions: true, Acks: producertest.AcksOwn,
		DrainNotifier: true, Closer: true, Decoder: true, Concurrent: true}
	for _, mode := range []struct {
		name string
		live dsclient.LiveMode
	}{{"LiveOff", dsclient.LiveOff}, {"LongPoll", dsclient.LiveLongPoll}, {"SSE", dsclient.LiveSSE}} {
		t.Run(mode.name, func(t *testing.T) {
			f := features
			f.Endless = mode.live != dsclient.LiveOff
			producertest.TestProducer(t, f, func(t testing.TB, _ ack.Acknowledger) producertest.Fixture[conformanceItem] {
				srv := newConformanceServer(t, 64)
				st, items := srv.jsonStream(t, "items", 0, 20)
				p, err := ds.NewProducer(ds.ProducerOptions[conformanceItem]{Stream: st, Live: mode.live, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				return producertest.Fixture[conformanceItem]{Producer: p, Input: items, Activity: srv.requests.Load,
					Acknowledged: func() int { return int(p.Committed().Seq) }}
			})
		})
	}
}

// A text stream cut into lines: one message per line, its position the number of lines
// before it.
func TestProducerLinesConformance(t *testing.T) {
	features := producertest.Features{Ordered: true, Positions: true, Acks: producertest.AcksOwn,
		DrainNotifier: true, Closer: true, Decoder: true, Concurrent: true}
	producertest.TestProducer(t, features, func(t testing.TB, _ ack.Acknowledger) producertest.Fixture[string] {
		srv := newConformanceServer(t, 32)
		ctx := context.Background()
		st := srv.client.Stream(conformanceRoot + "lines")
		if _, err := st.Create(ctx, dsclient.CreateOptions{ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for i := range 20 {
			lines = append(lines, fmt.Sprintf("line %d", i))
			if _, err := st.Append(ctx, []byte(lines[i]+"\n"), dsclient.AppendOptions{ContentType: "text/plain"}); err != nil {
				t.Fatal(err)
			}
		}
		p, err := ds.NewProducer(ds.ProducerOptions[string]{Stream: st, Split: bufio.ScanLines, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return producertest.Fixture[string]{Producer: p, Input: lines, Activity: srv.requests.Load,
			Acknowledged: func() int { return int(p.Committed().Seq) }}
	})
}

// The subscription producer over one pull-wake subscription of three streams: endless (a
// worker runs until stopped), ordered and numbered within each stream. What it took as
// acknowledged is what it saved: the sum of its streams' checkpointed positions.
func TestSubscriptionProducerConformance(t *testing.T) {
	features := producertest.Features{Endless: true, Ordered: true, Positions: true, Acks: producertest.AcksOwn,
		DrainNotifier: true, Closer: true, Decoder: true, Concurrent: true}
	producertest.TestProducer(t, features, func(t testing.TB, _ ack.Acknowledger) producertest.Fixture[conformanceItem] {
		srv := newConformanceServer(t, 64)
		ctx := context.Background()
		sub := srv.client.Subscription(conformanceRoot, "items")
		if _, err := sub.Stream("wake").Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sub.Create(ctx, dsclient.SubscriptionConfig{Pattern: "items/*", WakeStream: "wake", LeaseTTL: 30 * time.Second}); err != nil {
			t.Fatal(err)
		}
		var input []conformanceItem
		var paths []string
		for i, name := range []string{"a", "b", "c"} {
			_, items := srv.jsonStream(t, "items/"+name, 100*i, 8)
			input = append(input, items...)
			paths = append(paths, "/v1/stream/items/"+name)
		}
		store := new(ack.MemoryStore)
		p, err := ds.NewSubscriptionProducer(ds.SubscriptionOptions[conformanceItem]{
			Subscriptions: []*dsclient.Subscription{sub},
			Worker:        "conformance",
			Name:          "conformance",
			Checkpoints:   store,
			Logger:        slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		saved := func() int {
			sum := 0
			for _, path := range paths {
				v, found, err := store.Load(ctx, ack.CheckpointKey("conformance", path))
				if err != nil || !found {
					continue
				}
				if pos, err := ack.ParsePosition(v); err == nil && pos.Seq > 0 {
					sum += int(pos.Seq)
				}
			}
			return sum
		}
		return producertest.Fixture[conformanceItem]{Producer: p, Input: input, Activity: srv.requests.Load, Acknowledged: saved}
	})
}
