package dstest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Writers append to many streams while several workers follow the wake stream, claim, read
// each pending stream from its cursor and ack: every message is processed exactly once and
// in order (one holder at a time, a server-held cursor, no lease lost), and every cursor ends
// at its stream's tail.
func TestPullWakeConcurrentWorkers(t *testing.T) {
	const streams, perStream, workers = 20, 40, 3
	h, err := NewHandler(Options{LongPollTimeout: 100 * time.Millisecond})
	must(t, err)
	defer h.Close()
	call := func(method, target, body string, headers ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/v1/stream/"+target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	call("PUT", "wake", "")
	if rec := call("PUT", sub("s"), `{"type":"pull-wake","pattern":"tenants/*","wake_stream":"wake","lease_ttl_ms":600000}`); rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}

	var mu sync.Mutex
	seen := make(map[string][]int)
	progress := make(chan struct{}, 1) // a worker acked done
	var holders sync.Mutex             // held while a worker holds the lease: two at once fail TryLock
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range workers {
		worker := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			wakeOffset := "-1"
			for ctx.Err() == nil {
				rec := call("POST", sub("s")+"/claim", `{"worker":"`+worker+`"}`)
				if rec.Code != 200 {
					// Wait for the next wake event (or the long-poll's end).
					rec := call("GET", "wake?live=long-poll&offset="+wakeOffset, "")
					if next := rec.Header().Get("Stream-Next-Offset"); next != "" {
						wakeOffset = next
					}
					continue
				}
				if !holders.TryLock() {
					t.Errorf("%s claimed while another worker holds the lease", worker)
					return
				}
				var c claimed
				decode(t, rec.Body.String(), &c)
				var acks []string
				for _, s := range c.Streams {
					if !s.HasPending {
						continue
					}
					r := call("GET", s.Path+"?offset="+s.AckedOffset, "")
					var items []struct{ N int }
					decode(t, r.Body.String(), &items)
					mu.Lock()
					for _, it := range items {
						seen[s.Path] = append(seen[s.Path], it.N)
					}
					mu.Unlock()
					acks = append(acks, s.Path, r.Header().Get("Stream-Next-Offset"))
				}
				holders.Unlock()
				// The lease ends with the done ack: release the mutex first, as the next
				// holder may claim as soon as the server has applied it.
				r := call("POST", sub("s")+"/ack", ackBody(c.WakeID, c.Generation, true, acks...), bearer(c.Token)...)
				if r.Code != 200 {
					t.Errorf("%s: ack %d %s", worker, r.Code, r.Body)
					return
				}
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	var writers sync.WaitGroup
	for i := range streams {
		writers.Go(func() {
			path := fmt.Sprintf("tenants/t%02d", i)
			call("PUT", path, "")
			for n := range perStream {
				if rec := call("POST", path, fmt.Sprintf(`{"n":%d}`, n)); rec.Code != 204 {
					t.Errorf("append: %d", rec.Code)
				}
			}
		})
	}
	writers.Wait()
	done := func() bool {
		var v subscriptionView
		decode(t, call("GET", sub("s"), "").Body.String(), &v)
		if len(v.Streams) != streams {
			return false
		}
		for _, l := range v.Streams {
			if l.AckedOffset != call("HEAD", l.Path, "").Header().Get("Stream-Next-Offset") {
				return false
			}
		}
		return true
	}
	deadline := time.After(2 * time.Minute)
	for !done() {
		select {
		case <-progress:
		case <-deadline:
			t.Fatal("the workers did not catch up")
		}
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for i := range streams {
		path := fmt.Sprintf("tenants/t%02d", i)
		got := seen[path]
		ok := len(got) == perStream
		for n := 0; ok && n < perStream; n++ {
			ok = got[n] == n
		}
		if !ok {
			b, _ := json.Marshal(got)
			t.Errorf("%s processed %s, want 0..%d once each, in order", path, b, perStream-1)
		}
	}
}
