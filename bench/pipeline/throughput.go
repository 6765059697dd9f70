package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/sluice-go/sluice/bench/internal/decoders"
	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// reader is one way of reading a whole stream of n events into a tally.
type reader struct {
	name string
	// kind is "bare", "client", "parallel" or "pipeline"; decoder names the decoder of the
	// parallel and pipeline readers.
	kind, decoder string
	run           func(ctx context.Context, streamURL string, t *tally) error
}

// readersFor returns the readers of the throughput table: the bare reader (the ratios'
// base), the client, and for each decoder the hand-written parallel reader and the pipeline.
func readersFor(decs []decoders.Decoder) []reader {
	rs := []reader{
		{name: "bare net/http+json.Decoder", kind: "bare", run: readBare},
		{name: "client JSONItems[T]", kind: "client", run: readClient},
	}
	for _, d := range decs {
		rs = append(rs,
			reader{name: "parallel reader (" + d.Name + ")", kind: "parallel", decoder: d.Name,
				run: func(ctx context.Context, u string, t *tally) error { return readParallel(ctx, u, t, d) }},
			reader{name: "pipeline (" + d.Name + ")", kind: "pipeline", decoder: d.Name,
				run: func(ctx context.Context, u string, t *tally) error { return readPipeline(ctx, u, t, d) }},
		)
	}
	return rs
}

// producerOptions returns the options of the producer of the throughput and crash runs
// with decoder d: std is the producer's default decoding (encoding/json semantics); any
// other decoder is passed as ProducerOptions.Decode.
func producerOptions(s *dsclient.Stream, d decoders.Decoder) ds.ProducerOptions[dsload.Event] {
	o := ds.ProducerOptions[dsload.Event]{Stream: s}
	if d.Name != "std" { // the producer's default is dsclient.StdJSON
		o.JSON = dsclient.JSONDecoderFunc(d.Unmarshal)
	}
	return o
}

// httpClient is what every reader uses: the same transport settings for all.
func httpClient() *http.Client { return &http.Client{Transport: dsload.Transport()} }

// readBare reads the stream with plain GETs from offset -1, following Stream-Next-Offset until
// a response says Stream-Up-To-Date, each body decoded by a json.Decoder: Token for "[", then
// Decode of every value into the event type.
func readBare(ctx context.Context, streamURL string, t *tally) error {
	c := httpClient()
	defer c.CloseIdleConnections()
	offset := "-1"
	batch := make([]*dsload.Event, 0, 1000)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, streamURL+"?offset="+url.QueryEscape(offset), nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("GET offset %s: status %d", offset, resp.StatusCode)
		}
		dec := json.NewDecoder(resp.Body)
		if _, err := dec.Token(); err != nil {
			resp.Body.Close()
			return fmt.Errorf("GET offset %s: %w", offset, err)
		}
		for dec.More() {
			e := new(dsload.Event)
			if err := dec.Decode(e); err != nil {
				resp.Body.Close()
				return fmt.Errorf("GET offset %s: %w", offset, err)
			}
			batch = append(batch, e)
			if len(batch) == cap(batch) {
				t.add(batch...)
				batch = batch[:0]
			}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.add(batch...)
		batch = batch[:0]
		next := resp.Header.Get("Stream-Next-Offset")
		if resp.Header.Get("Stream-Up-To-Date") != "" {
			return nil
		}
		if next == "" || next == offset {
			return fmt.Errorf("GET offset %s: no progress (next %q)", offset, next)
		}
		offset = next
	}
}

// readClient reads the stream with dsclient.JSONItems.
func readClient(ctx context.Context, streamURL string, t *tally) error {
	c := httpClient()
	defer c.CloseIdleConnections()
	client, err := dsclient.NewClient(dsclient.WithHTTPClient(c))
	if err != nil {
		return err
	}
	batch := make([]*dsload.Event, 0, 1000)
	for it, err := range dsclient.JSONItems[dsload.Event](ctx, client.Stream(streamURL), dsclient.ReadOptions{}) {
		if err != nil {
			return err
		}
		e := it.Value
		batch = append(batch, &e)
		if len(batch) == cap(batch) {
			t.add(batch...)
			batch = batch[:0]
		}
	}
	t.add(batch...)
	return nil
}

// readPipeline reads the stream into a Sluice pipeline: the durable-streams Producer (catch-up,
// LiveOff, default options but the decoder: see producerOptions), one pool of 4
// processors, one batcher of 1000 messages / 50 ms whose handler sums the amounts; every
// message acknowledged. Beyond the tally it checks the producer's own account: every message
// handed out and finished, none failed to decode, and the committed offset at the tail.
func readPipeline(ctx context.Context, streamURL string, t *tally, d decoders.Decoder) error {
	c := httpClient()
	defer c.CloseIdleConnections()
	s := dsclient.NewStream(streamURL, dsclient.WithHTTPClient(c))
	p, err := ds.NewProducer(producerOptions(s, d))
	if err != nil {
		return err
	}
	pl, err := catchUpPipeline(p, t, 0, 0, nil)
	if err != nil {
		return err
	}
	if err := pl.Run(ctx); err != nil {
		return err
	}
	st := p.Stats()
	if st.Pending != 0 || !st.AtTail || st.DecodeFailures != 0 || int64(st.Messages) != t.n {
		return fmt.Errorf("producer stats after the run: %+v, want %d messages, none pending", st, t.n)
	}
	head, err := s.Head(ctx)
	if err != nil {
		return err
	}
	if c := p.Committed(); c.Offset != string(head.NextOffset) || c.Skip != 0 || c.Seq != t.n {
		return fmt.Errorf("committed position %v, want the tail %q after %d messages", c, head.NextOffset, t.n)
	}
	return nil
}

// catchUpPipeline builds the pipeline of the throughput and memory runs over p: 4 processors,
// one batcher of 1000 / 50 ms adding each batch to t, then sleeping for sinkDelay, then
// calling afterBatch (if not nil) with the events seen so far. maxInFlight is the pipeline's
// MaxInFlight (0 for its default).
func catchUpPipeline(p pipeline.Producer[dsload.Event], t *tally, sinkDelay time.Duration, maxInFlight int, afterBatch func(seen int64)) (*pipeline.Pipeline[dsload.Event], error) {
	return pipeline.New(pipeline.Options[dsload.Event]{
		Name:        "bench",
		Producer:    p,
		MaxInFlight: maxInFlight,
		Processors: []pipeline.ProcessorOptions[dsload.Event]{{Concurrency: 4,
			Handler: pipeline.HandlerFunc[dsload.Event](func(ctx context.Context, m *pipeline.Message[dsload.Event]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[dsload.Event]{"sum": {BatchSize: 1000, BatchTimeout: 50 * time.Millisecond,
			Handler: pipeline.BatchHandlerFunc[dsload.Event](func(ctx context.Context, ms []pipeline.Message[dsload.Event], _ pipeline.BatchInfo) error {
				t.mu.Lock()
				for i := range ms {
					t.addLocked(ms[i].Data.ID, ms[i].Data.Amount)
				}
				seen := t.count
				t.mu.Unlock()
				if sinkDelay > 0 {
					time.Sleep(sinkDelay) // the slow sink's work
				}
				if afterBatch != nil {
					afterBatch(seen)
				}
				return nil
			})}},
		DefaultBatcher:  "sum",
		ShutdownTimeout: time.Minute,
	})
}
