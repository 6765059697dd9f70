package dssink_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/dssink"
)

// servers runs f against the in-process server and the reference server.
func servers(t *testing.T, f func(t *testing.T, url func() string)) {
	t.Run("dstest", func(t *testing.T) {
		srv := dstest.ForTest(t, dstest.Options{})
		f(t, func() string { return srv.StreamURL(name(t)) })
	})
	t.Run("ref", func(t *testing.T) {
		srv := ref(t)
		f(t, func() string { return srv.StreamURL(name(t)) })
	})
}

func newSink(t testing.TB, o dssink.Options[int]) *dssink.Sink[int] {
	t.Helper()
	if o.ID == "" {
		o.ID = "test-sink"
	}
	if o.Value == nil && o.Bytes == nil {
		o.Value = valueOf
	}
	s, err := dssink.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handle hands batch to the sink as the batch key key, and checks that no message failed.
func handle(t testing.TB, s *dssink.Sink[int], key string, batch []pipeline.Message[int]) {
	t.Helper()
	if err := s.HandleBatch(context.Background(), batch, pipeline.BatchInfo{Key: key, Size: len(batch)}); err != nil {
		t.Fatal(err)
	}
	if ps, _ := failed(batch); len(ps) > 0 {
		for i := range batch {
			if batch[i].Failed() {
				t.Fatalf("positions %v failed: %v", ps, batch[i].Err())
			}
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	s := dsclient.NewStream("http://127.0.0.1:1/out")
	bytesOf := func(m *pipeline.Message[int]) ([]byte, error) { return nil, nil }
	for _, tc := range []struct {
		name   string
		o      dssink.Options[int]
		fields []string
	}{
		{"value", dssink.Options[int]{Stream: s, ID: "x", Value: valueOf}, nil},
		{"bytes", dssink.Options[int]{Stream: s, ID: "x", Bytes: bytesOf, ContentType: "text/plain"}, nil},
		{"zero", dssink.Options[int]{}, []string{"Options.Stream", "Options.ID", "Options.Value"}},
		{"both", dssink.Options[int]{Stream: s, ID: "x", Value: valueOf, Bytes: bytesOf}, []string{"Options.Bytes"}},
		{"value to a byte stream", dssink.Options[int]{Stream: s, ID: "x", Value: valueOf, ContentType: "text/plain"}, []string{"Options.ContentType"}},
		{"bad ID and size", dssink.Options[int]{Stream: s, ID: "a\nb", Value: valueOf, MaxRequestBytes: -1},
			[]string{"Options.ID", "Options.MaxRequestBytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dssink.New(tc.o)
			if len(tc.fields) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var oe *pipeline.OptionsError
			if !errors.As(err, &oe) {
				t.Fatalf("%v (%T), want a *pipeline.OptionsError", err, err)
			}
			var got []string
			for _, p := range oe.Problems {
				got = append(got, p.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

// A batch delivered again by a later run (a restart after a crash) is not appended again,
// whether it is cut as before or not: the sink learns the last position written from the
// server and writes exactly what is missing.
func TestRedeliveredBatchNotAppendedTwice(t *testing.T) {
	servers(t, func(t *testing.T, url func() string) {
		s := jsonStream(t, url())
		run1 := newSink(t, dssink.Options[int]{Stream: s})
		handle(t, run1, "", batchOf("src", span(0, 9)...))
		checkOut(t, s, map[string][]int64{"src": span(0, 9)})
		if st := run1.Stats(); st.Written != 10 || st.Requests != 1 || st.Probes != 1 {
			t.Fatalf("first run: %+v", st)
		}

		// The same batch, after a restart.
		run2 := newSink(t, dssink.Options[int]{Stream: s})
		handle(t, run2, "", batchOf("src", span(0, 9)...))
		if st := run2.Stats(); st.Written != 0 || st.Skipped != 10 || st.Requests != 0 {
			t.Fatalf("same batch again: %+v", st)
		}
		checkOut(t, s, map[string][]int64{"src": span(0, 9)})

		// Cut differently: half of it was written.
		run3 := newSink(t, dssink.Options[int]{Stream: s})
		handle(t, run3, "", batchOf("src", span(5, 14)...))
		handle(t, run3, "", batchOf("src", span(15, 20)...))
		if st := run3.Stats(); st.Written != 11 || st.Skipped != 5 || st.Probes != 1 {
			t.Fatalf("overlapping batch: %+v", st)
		}
		checkOut(t, s, map[string][]int64{"src": span(0, 20)})

		// A batch that starts exactly at the last position written.
		run4 := newSink(t, dssink.Options[int]{Stream: s})
		handle(t, run4, "", batchOf("src", span(20, 22)...))
		if st := run4.Stats(); st.Written != 2 || st.Skipped != 1 {
			t.Fatalf("batch from the last position: %+v", st)
		}
		checkOut(t, s, map[string][]int64{"src": span(0, 22)})
	})
}

// Within a run, messages must come in position order per source stream and key: a message
// at or below the last position written is refused with a permanent ErrOutOfOrder (not
// taken for one written already, not written out of order), and the rest of its batch is
// written. A position repeated within a batch is refused too. Positions a later run finds
// at or below the server's last position are those of its redelivery, and are skipped.
func TestOutOfOrderRefused(t *testing.T) {
	servers(t, func(t *testing.T, url func() string) {
		s := jsonStream(t, url())
		sink := newSink(t, dssink.Options[int]{Stream: s})
		handle(t, sink, "", batchOf("src", span(10, 19)...))

		late := batchOf("src", span(5, 9)...)
		if err := sink.HandleBatch(context.Background(), late, pipeline.BatchInfo{}); err != nil {
			t.Fatal(err)
		}
		ps, permanent := failed(late)
		if !slices.Equal(ps, span(5, 9)) || !permanent || !errors.Is(late[0].Err(), dssink.ErrOutOfOrder) {
			t.Fatalf("late batch: failed %v (permanent %v): %v", ps, permanent, late[0].Err())
		}

		overlap := batchOf("src", span(15, 25)...)
		sink.HandleBatch(context.Background(), overlap, pipeline.BatchInfo{})
		if ps, permanent := failed(overlap); !slices.Equal(ps, span(15, 19)) || !permanent {
			t.Fatalf("overlapping batch: failed %v (permanent %v)", ps, permanent)
		}

		twice := batchOf("src", 30, 30, 31)
		sink.HandleBatch(context.Background(), twice, pipeline.BatchInfo{})
		if ps, _ := failed(twice); !slices.Equal(ps, []int64{30}) || !errors.Is(twice[1].Err(), dssink.ErrOutOfOrder) {
			t.Fatalf("repeated position: failed %v", ps)
		}
		if st := sink.Stats(); st.Refused != 11 || st.Written != 10+6+2 {
			t.Fatalf("stats %+v", st)
		}
		checkOut(t, s, map[string][]int64{"src": append(span(10, 25), 30, 31)})

		next := newSink(t, dssink.Options[int]{Stream: s})
		handle(t, next, "", batchOf("src", span(0, 31)...))
		if st := next.Stats(); st.Skipped != 32 || st.Written != 0 || st.Refused != 0 {
			t.Fatalf("later run: %+v", st)
		}
	})
}

// Messages of several source streams in one batch, and of several batch keys of one source
// stream (each key in order, the keys interleaved), are written under one producer ID each:
// a redelivery of all of them adds nothing, and concurrent batches of different keys write
// in parallel.
func TestSeveralSourcesAndKeys(t *testing.T) {
	servers(t, func(t *testing.T, url func() string) {
		s := jsonStream(t, url())
		sink := newSink(t, dssink.Options[int]{Stream: s})
		mixed := append(batchOf("b", 3, 4, 5), batchOf("a", 0, 1, 2)...)
		handle(t, sink, "", mixed)
		var wg sync.WaitGroup
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var ps []int64
				for p := int64(k); p < 40; p += 2 {
					ps = append(ps, p)
				}
				for len(ps) > 0 {
					n := min(len(ps), 7)
					handle(t, sink, fmt.Sprint("key", k), batchOf("c", ps[:n]...))
					ps = ps[n:]
				}
			}()
		}
		wg.Wait()
		again := newSink(t, dssink.Options[int]{Stream: s})
		handle(t, again, "", append(batchOf("a", 0, 1, 2), batchOf("b", 3, 4, 5)...))
		for k := range 2 {
			var ps []int64
			for p := int64(k); p < 40; p += 2 {
				ps = append(ps, p)
			}
			handle(t, again, fmt.Sprint("key", k), batchOf("c", ps...))
		}
		if st := again.Stats(); st.Written != 0 || st.Skipped != 46 || st.Probes != 4 {
			t.Fatalf("redelivery: %+v", st)
		}
		got := map[string][]int64{}
		for _, it := range readOut(t, s) {
			got[it.Stream] = append(got[it.Stream], it.Pos)
		}
		slices.Sort(got["c"])
		if !slices.Equal(got["a"], span(0, 2)) || !slices.Equal(got["b"], span(3, 5)) || !slices.Equal(got["c"], span(0, 39)) {
			t.Fatalf("output %v", got)
		}
	})
}

// A message with nothing to append succeeds without an item; a message whose item does not
// encode (or is not JSON for a JSON stream) fails as bad data, and the rest of the batch is
// written.
func TestItemsNilAndBad(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	s := jsonStream(t, srv.StreamURL(name(t)))
	sink := newSink(t, dssink.Options[int]{Stream: s, Value: func(m *pipeline.Message[int]) (any, error) {
		switch p := m.Metadata.Position; {
		case p == 3:
			return nil, errors.New("no encoding for 3")
		case p%2 == 1:
			return nil, nil
		}
		return valueOf(m)
	}})
	batch := batchOf("src", span(0, 9)...)
	sink.HandleBatch(context.Background(), batch, pipeline.BatchInfo{})
	if ps, permanent := failed(batch); !slices.Equal(ps, []int64{3}) || !permanent || !strings.Contains(batch[3].Err().Error(), "no encoding for 3") {
		t.Fatalf("failed %v (permanent %v)", ps, permanent)
	}
	checkOut(t, s, map[string][]int64{"src": {0, 2, 4, 6, 8}})

	bad := newSink(t, dssink.Options[int]{Stream: s, ID: "bytes", Bytes: func(m *pipeline.Message[int]) ([]byte, error) {
		return []byte("{not json"), nil
	}})
	batch = batchOf("src", 10)
	bad.HandleBatch(context.Background(), batch, pipeline.BatchInfo{})
	if ps, permanent := failed(batch); len(ps) != 1 || !permanent {
		t.Fatalf("invalid JSON item: failed %v (permanent %v)", ps, permanent)
	}
}

// Value may return several values for one message: each is one message of the output, and
// a redelivery skips them all.
func TestManyValues(t *testing.T) {
	servers(t, func(t *testing.T, url func() string) {
		s := jsonStream(t, url())
		value := func(m *pipeline.Message[int]) (any, error) {
			o, _ := valueOf(m)
			switch m.Metadata.Position % 3 {
			case 0:
				return dssink.Many{o, o}, nil
			case 1:
				return dssink.Many{}, nil
			}
			return o, nil
		}
		for range 2 {
			sink := newSink(t, dssink.Options[int]{Stream: s, Value: value, MaxRequestBytes: 100})
			handle(t, sink, "", batchOf("src", span(0, 8)...))
		}
		checkOut(t, s, map[string][]int64{"src": {0, 0, 2, 3, 3, 5, 6, 6, 8}})
	})
}

// lossyTransport loses the answers of the appends numbered with epoch (the sink's last
// position of a request), after the server stored them: the first lose of them.
type lossyTransport struct {
	epoch string
	mu    sync.Mutex
	lose  int
}

func (l *lossyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost && r.Header.Get("Producer-Epoch") == l.epoch && r.Header.Get("Producer-Seq") == "0" {
		l.mu.Lock()
		lose := l.lose > 0
		l.lose--
		l.mu.Unlock()
		if lose {
			resp.Body.Close()
			return nil, errors.New("connection reset after the server answered")
		}
	}
	return resp, err
}

// An append whose answers are lost, beyond the client's retries, fails its messages as a
// transient failure; the pipeline hands them again, and the sink, not knowing whether the
// append was stored, asks the server, finds it was, and writes nothing twice.
func TestLostAnswerRetried(t *testing.T) {
	servers(t, func(t *testing.T, url func() string) {
		u := url()
		jsonStream(t, u)
		s := dsclient.NewStream(u, dsclient.WithContentType("application/json"),
			dsclient.WithRetry(dsclient.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}),
			dsclient.WithHTTPClient(&http.Client{Transport: &lossyTransport{epoch: "9", lose: 50}}))
		sink := newSink(t, dssink.Options[int]{Stream: s})
		batch := batchOf("src", span(0, 9)...)
		sink.HandleBatch(context.Background(), batch, pipeline.BatchInfo{})
		ps, permanent := failed(batch)
		if !slices.Equal(ps, span(0, 9)) || permanent {
			t.Fatalf("lost answers: failed %v (permanent %v)", ps, permanent)
		}
		retry := batchOf("src", span(0, 9)...)
		handle(t, sink, "", retry)
		handle(t, sink, "", batchOf("src", span(10, 12)...))
		if st := sink.Stats(); st.Probes != 2 || st.Skipped != 10 || st.Written != 3 {
			t.Fatalf("stats %+v", st)
		}
		checkOut(t, s, map[string][]int64{"src": span(0, 12)})
	})
}

// Requests close at MaxRequestBytes; a request the server finds too large is split, and an
// item too large alone fails as bad data while the others are written.
func TestRequestSizes(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{MaxBodyBytes: 400})
	s := jsonStream(t, srv.StreamURL(name(t)))
	sink := newSink(t, dssink.Options[int]{Stream: s, MaxRequestBytes: 200})
	handle(t, sink, "", batchOf("src", span(0, 29)...))
	if st := sink.Stats(); st.Requests < 6 || st.Written != 30 {
		t.Fatalf("stats %+v", st)
	}
	big := newSink(t, dssink.Options[int]{Stream: s, ID: "big", MaxRequestBytes: 100000, Value: func(m *pipeline.Message[int]) (any, error) {
		if m.Metadata.Position == 35 {
			return strings.Repeat("x", 500), nil
		}
		return valueOf(m)
	}})
	batch := batchOf("src", span(30, 39)...)
	big.HandleBatch(context.Background(), batch, pipeline.BatchInfo{})
	if ps, permanent := failed(batch); !slices.Equal(ps, []int64{35}) || !permanent || !errors.Is(batch[5].Err(), dsclient.ErrPayloadTooLarge) {
		t.Fatalf("failed %v (permanent %v): %v", ps, permanent, batch[5].Err())
	}
	checkOut(t, s, map[string][]int64{"src": append(span(0, 34), span(36, 39)...)})
}

// Bytes to a stream of another content type, learned from the server: the items run
// together, and a redelivery adds nothing.
func TestBytesToByteStream(t *testing.T) {
	servers(t, func(t *testing.T, url func() string) {
		s := dsclient.NewStream(url())
		if _, err := s.Create(context.Background(), dsclient.CreateOptions{ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
		line := func(m *pipeline.Message[int]) ([]byte, error) {
			return fmt.Appendf(nil, "%d\n", m.Metadata.Position), nil
		}
		for range 2 {
			sink := newSink(t, dssink.Options[int]{Stream: s, Bytes: line})
			handle(t, sink, "", batchOf("src", span(0, 4)...))
		}
		res, err := s.ReadAll(context.Background(), dsclient.ReadOptions{})
		if err != nil || string(res.Data) != "0\n1\n2\n3\n4\n" {
			t.Fatalf("output %q %v", res.Data, err)
		}
	})
}
