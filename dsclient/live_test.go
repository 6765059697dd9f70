package dsclient_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	ds "github.com/sluice-go/sluice/dsclient"
)

// An SSE response that ends without closing the stream is reconnected from the last control
// event's offset, echoing its cursor; the catch-up before SSE is a plain request.
func TestSSEReconnectsFromLastControl(t *testing.T) {
	synctest.Test(t, testSSEReconnectsFromLastControl)
}

func testSSEReconnectsFromLastControl(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		if q.Get("live") != "sse" {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Stream-Next-Offset", "o1")
			w.Header().Set("Stream-Up-To-Date", "true")
			io.WriteString(w, "a")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		switch q.Get("offset") {
		case "o1":
			io.WriteString(w, "event: data\r\ndata: b\r\n\r\nevent: control\r\ndata: {\"streamNextOffset\":\"o2\",\"streamCursor\":\"c2\"}\r\n\r\n")
			io.WriteString(w, "event: data\ndata: lost\n\n") // cut before its control event
		case "o2":
			io.WriteString(w, ": keep-alive comment\nevent: data\ndata: c\n\nevent: control\ndata: {\"streamNextOffset\":\"o3\",\"streamClosed\":true}\n\n")
		}
	})
	var got []string
	for it, err := range inproc(h, "/s").Text(context.Background(), ds.ReadOptions{Live: ds.LiveSSE}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, it.Value+"@"+string(it.Chunk.NextOffset))
	}
	if strings.Join(got, ",") != "a@o1,b@o2,c@o3" {
		t.Fatalf("chunks %v", got)
	}
	want := []string{"offset=-1", "live=sse&offset=o1", "cursor=c2&live=sse&offset=o2"}
	if fmt.Sprint(queries) != fmt.Sprint(want) {
		t.Fatalf("requests %v, want %v", queries, want)
	}
}

// Long-poll requests echo the last cursor; a 204 is an empty up-to-date chunk.
func TestLongPollCursorEcho(t *testing.T) {
	var n atomic.Int32
	var cursors []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cursors = append(cursors, r.URL.Query().Get("cursor"))
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Stream-Up-To-Date", "true")
		switch n.Add(1) {
		case 1:
			w.Header().Set("Stream-Next-Offset", "o1")
			w.Header().Set("Stream-Cursor", "10")
			w.WriteHeader(http.StatusNoContent)
		case 2:
			w.Header().Set("Stream-Next-Offset", "o2")
			w.Header().Set("Stream-Cursor", "11")
			io.WriteString(w, "x")
		default:
			w.Header().Set("Stream-Next-Offset", "o2")
			w.Header().Set("Stream-Closed", "true")
			w.WriteHeader(http.StatusNoContent)
		}
	})
	r := inproc(h, "/s").Reader(context.Background(), ds.ReadOptions{Live: ds.LiveLongPoll, Offset: ds.Now})
	defer r.Close()
	var statuses []int
	for {
		c, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, c.Status())
	}
	if fmt.Sprint(statuses) != "[204 200 204]" || fmt.Sprint(cursors) != "[ 10 11]" {
		t.Fatalf("statuses %v cursors %q", statuses, cursors)
	}
}

type countingObserver struct {
	ds.NopObserver
	mu                             sync.Mutex
	starts, dones, retries, chunks int
	items                          int
}

func (o *countingObserver) RequestStart(ds.RequestStartEvent) { o.mu.Lock(); o.starts++; o.mu.Unlock() }
func (o *countingObserver) RequestDone(ds.RequestDoneEvent)   { o.mu.Lock(); o.dones++; o.mu.Unlock() }
func (o *countingObserver) Retry(ds.RetryEvent)               { o.mu.Lock(); o.retries++; o.mu.Unlock() }
func (o *countingObserver) Chunk(e ds.ChunkEvent) {
	o.mu.Lock()
	o.chunks++
	o.items += e.Items
	o.mu.Unlock()
}

func TestObserverAndAllocations(t *testing.T) {
	body := jsonArray(10000)
	var calls atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Stream-Next-Offset", "o1")
		w.Header().Set("Stream-Up-To-Date", "true")
		w.Write(body)
	})
	obs := &countingObserver{}
	n := 0
	for _, err := range inproc(h, "/s", fastRetry(), ds.WithObserver(obs)).RawItems(context.Background(), ds.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 10000 || obs.starts != 2 || obs.dones != 2 || obs.retries != 1 || obs.chunks != 1 || obs.items != 10000 {
		t.Fatalf("items %d, observer %+v", n, obs)
	}
	// Reading raw items allocates nothing per item when no observer is set.
	s := inproc(h, "/s")
	allocs := testing.AllocsPerRun(3, func() {
		r := s.Reader(context.Background(), ds.ReadOptions{})
		c, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := c.NextItem(); err != nil {
				break
			}
		}
		r.Close()
	})
	if perItem := allocs / 10000; perItem > 0.02 {
		t.Fatalf("%.0f allocations for 10000 items", allocs)
	}
}
