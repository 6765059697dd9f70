package segmentiojson_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/dsclient/segmentiojson"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

type order struct {
	ID     int64   `json:"id"`
	User   string  `json:"user"`
	Amount float64 `json:"amount"`
	Tags   []string
}

// serve answers every read with body, as one up-to-date response.
func serve(t *testing.T, body string) *dsclient.Stream {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Stream-Next-Offset", "0000000000000000_0000000000000100")
		w.Header().Set("Stream-Up-To-Date", "true")
		io.WriteString(w, body)
	}))
	t.Cleanup(hs.Close)
	p := dsclient.DefaultRetryPolicy()
	p.MaxAttempts = 1
	return dsclient.NewStream(hs.URL+"/v1/stream/s", dsclient.WithRetry(p))
}

// The decoder gives the values encoding/json gives, through typed reads.
func TestSameValuesAsStd(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 1 << 10})
	ctx := context.Background()
	s := dsclient.NewStream(srv.StreamURL("orders"), dsclient.WithContentType("application/json"))
	if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var want []order
	for i := range 500 {
		o := order{ID: int64(i), User: "u\"ser\\" + strings.Repeat("é", i%5), Amount: float64(i) / 3, Tags: []string{"a", "b"}[:i%3%2]}
		want = append(want, o)
	}
	if _, err := dsclient.AppendJSONBatch(ctx, s, want, dsclient.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	std, _, err := dsclient.ReadJSON[order](ctx, s, dsclient.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fast, _, err := dsclient.ReadJSON[order](ctx, s, dsclient.ReadOptions{JSON: segmentiojson.Decoder})
	if err != nil {
		t.Fatal(err)
	}
	if len(std) != len(want) || len(fast) != len(want) {
		t.Fatalf("read %d and %d orders, want %d", len(std), len(fast), len(want))
	}
	for i := range want {
		if fast[i].ID != std[i].ID || fast[i].User != std[i].User || fast[i].Amount != std[i].Amount || len(fast[i].Tags) != len(std[i].Tags) {
			t.Fatalf("order %d: segmentio %+v, encoding/json %+v", i, fast[i], std[i])
		}
	}
}

// An item that does not fit the type, or is malformed inside, fails that item only
// (ErrDecode), and the read goes on; an item beyond MaxBytes is refused before any decoder
// sees it (ErrTooLarge).
func TestFailuresAndBounds(t *testing.T) {
	ctx := context.Background()
	s := serve(t, `[{"id":1},{"id":"two"},{"id":3,"amount":1.5e},{"id":4}]`)
	var ids []int64
	var failures []error
	for it, err := range dsclient.JSONItems[order](ctx, s, dsclient.ReadOptions{JSON: segmentiojson.Decoder}) {
		if err != nil {
			if !errors.Is(err, dsclient.ErrDecode) {
				t.Fatalf("item error %v, want ErrDecode", err)
			}
			failures = append(failures, err)
			continue
		}
		ids = append(ids, it.Value.ID)
	}
	if len(failures) != 2 || len(ids) != 2 || ids[0] != 1 || ids[1] != 4 {
		t.Fatalf("decoded %v with %d failures (%v), want 1 and 4 and two failures", ids, len(failures), failures)
	}

	big := serve(t, `[{"id":1,"user":"`+strings.Repeat("x", 4096)+`"}]`)
	for _, err := range dsclient.JSONItems[order](ctx, big, dsclient.ReadOptions{JSON: segmentiojson.Decoder, MaxBytes: 1024}) {
		if !errors.Is(err, dsclient.ErrTooLarge) {
			t.Fatalf("an item of 4 KiB under MaxBytes 1 KiB: %v, want ErrTooLarge", err)
		}
		return
	}
	t.Fatal("the oversized item gave nothing")
}

// Through the pipeline producer: items decode with the chosen decoder on the processors, and
// one that does not decode is a failed message carrying a *DecodeError (bad data).
func TestProducerWithDecoder(t *testing.T) {
	s := serve(t, `[{"id":1,"amount":2.5},{"id":"bad"},{"id":3,"amount":0.5}]`)
	p, err := ds.NewProducer(ds.ProducerOptions[order]{Stream: s, JSON: segmentiojson.Decoder})
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	var bad []error
	pl, err := pipeline.New(pipeline.Options[order]{
		Producer: p,
		Processors: []pipeline.ProcessorOptions[order]{{Concurrency: 2,
			Handler: pipeline.HandlerFunc[order](func(ctx context.Context, m *pipeline.Message[order]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[order]{"sum": {BatchSize: 10, Concurrency: 1,
			Handler: pipeline.BatchHandlerFunc[order](func(ctx context.Context, ms []pipeline.Message[order], _ pipeline.BatchInfo) error {
				for i := range ms {
					sum += ms[i].Data.Amount
				}
				return nil
			})}},
		DefaultBatcher: "sum",
		Failure: pipeline.FailureOptions[order]{Handler: pipeline.FailureHandlerFunc[order](func(ctx context.Context, ms []pipeline.Message[order]) error {
			for i := range ms {
				bad = append(bad, ms[i].Err())
			}
			return nil
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var de *ds.DecodeError
	if sum != 3 || len(bad) != 1 || !errors.As(bad[0], &de) || de.Position != 1 || !pipeline.IsPermanent(bad[0]) {
		t.Fatalf("sum %v, failures %v; want 3 and one *DecodeError at position 1", sum, bad)
	}
}
