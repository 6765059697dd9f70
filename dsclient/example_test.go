package dsclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// exampleServer is a minimal in-memory Durable Streams server for the examples: JSON streams,
// catch-up reads, offsets "0_<n>" after n messages. Tests use the reference server.
func exampleServer() *httptest.Server {
	var mu sync.Mutex
	streams := map[string][]json.RawMessage{}
	closed := map[string]bool{}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		msgs, ok := streams[r.URL.Path]
		off := func(n int) string { return "0_" + strconv.Itoa(n) }
		switch r.Method {
		case http.MethodPut:
			if !ok {
				streams[r.URL.Path] = []json.RawMessage{}
				w.WriteHeader(http.StatusCreated)
			}
			return
		case http.MethodPost:
			if !ok {
				http.Error(w, "Stream not found", http.StatusNotFound)
				return
			}
			var batch []json.RawMessage
			if b, _ := io.ReadAll(r.Body); len(b) > 0 && json.Unmarshal(b, &batch) != nil {
				batch = []json.RawMessage{b}
			}
			streams[r.URL.Path] = append(msgs, batch...)
			closed[r.URL.Path] = closed[r.URL.Path] || r.Header.Get("Stream-Closed") == "true"
			w.Header().Set("Stream-Next-Offset", off(len(streams[r.URL.Path])))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if !ok {
			http.Error(w, "Stream not found", http.StatusNotFound)
			return
		}
		start := 0
		if o := r.URL.Query().Get("offset"); strings.HasPrefix(o, "0_") {
			start, _ = strconv.Atoi(o[2:])
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Stream-Next-Offset", off(len(msgs)))
		w.Header().Set("Stream-Up-To-Date", "true")
		if closed[r.URL.Path] {
			w.Header().Set("Stream-Closed", "true")
		}
		b, _ := json.Marshal(msgs[start:])
		w.Write(b)
	}))
}

type Order struct {
	ID     int     `json:"id"`
	Amount float64 `json:"amount"`
}

func Example() {
	srv := exampleServer()
	defer srv.Close()
	ctx := context.Background()

	client, err := ds.NewClient(ds.WithHeader("Authorization", "Bearer secret"))
	if err != nil {
		panic(err)
	}
	orders := client.Stream(srv.URL+"/v1/stream/orders", ds.WithContentType("application/json"))
	if _, err := orders.Create(ctx, ds.CreateOptions{}); err != nil {
		panic(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := orders.AppendJSON(ctx, Order{ID: i, Amount: 9.5 * float64(i)}, ds.AppendOptions{}); err != nil {
			panic(err)
		}
	}
	// Read everything up to the tail, decoding each item.
	for it, err := range ds.JSONItems[Order](ctx, orders, ds.ReadOptions{}) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("order %d: %.2f (resume from %s)\n", it.Value.ID, it.Value.Amount, it.Chunk.NextOffset)
	}
	// Output:
	// order 1: 9.50 (resume from 0_3)
	// order 2: 19.00 (resume from 0_3)
	// order 3: 28.50 (resume from 0_3)
}

// The chunk reader exposes each response's metadata before its items, and decodes items only
// as they are asked for.
func ExampleStream_Reader() {
	srv := exampleServer()
	defer srv.Close()
	ctx := context.Background()
	s := ds.NewStream(srv.URL+"/v1/stream/events", ds.WithContentType("application/json"))
	s.Create(ctx, ds.CreateOptions{})
	ds.AppendJSONBatch(ctx, s, []string{"a", "b", "c"}, ds.AppendOptions{})

	r := s.Reader(ctx, ds.ReadOptions{Offset: ds.Beginning, Live: ds.LiveOff})
	defer r.Close()
	for {
		c, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println("chunk", c.StartOffset(), "->", c.NextOffset(), "up to date:", c.UpToDate())
		for {
			item, err := c.NextItem()
			if err == io.EOF {
				break
			}
			if err != nil {
				panic(err)
			}
			fmt.Println(" ", c.Index()-1, string(item))
		}
	}
	// Output:
	// chunk -1 -> 0_3 up to date: true
	//   0 "a"
	//   1 "b"
	//   2 "c"
}

func ExampleWriter() {
	srv := exampleServer()
	defer srv.Close()
	ctx := context.Background()
	s := ds.NewStream(srv.URL+"/v1/stream/audit", ds.WithContentType("application/json"))
	s.Create(ctx, ds.CreateOptions{})

	opts := ds.DefaultWriterOptions("audit-writer-1")
	opts.OnError = func(err error) { fmt.Println("batch lost:", err) }
	w, err := ds.NewWriter(s, opts)
	if err != nil {
		panic(err)
	}
	for i := range 100 {
		w.AppendJSON(ctx, map[string]int{"seq": i}) // buffered; sent in batches
	}
	if err := w.Close(ctx); err != nil { // flush, then stop
		panic(err)
	}
	items, _, _ := ds.ReadJSON[map[string]int](ctx, s, ds.ReadOptions{})
	fmt.Println(len(items), "items, last", items[99]["seq"])
	// Output: 100 items, last 99
}

func ExampleConsumer() {
	srv := exampleServer()
	defer srv.Close()
	ctx := context.Background()
	s := ds.NewStream(srv.URL+"/v1/stream/jobs", ds.WithContentType("application/json"))
	s.Create(ctx, ds.CreateOptions{})
	ds.AppendJSONBatch(ctx, s, []int{1, 2, 3, 4, 5}, ds.AppendOptions{})

	c, _ := ds.NewConsumer(s, ds.ConsumerOptions{
		MaxBatchItems: 2,
		Handler: func(ctx context.Context, b ds.ConsumerBatch) error {
			fmt.Println("batch of", len(b.Items), "starting at item", b.First, "last:", b.Last)
			return nil
		},
	})
	if err := c.Run(ctx); err != nil { // Live is off: returns at the tail
		panic(err)
	}
	fmt.Println("committed", c.Committed())
	// Output:
	// batch of 2 starting at item 0 last: false
	// batch of 2 starting at item 2 last: false
	// batch of 1 starting at item 4 last: true
	// committed 0_5
}

// A long-running read: it retries transient failures for as long as its context lives
// (ReadOptions.Retry changes only MaxAttempts of the handle's policy), gives up a silent
// connection after IdleTimeout, and returns only what retrying cannot fix. The in-process
// server is reached through dstest.NewTransport, without sockets.
func ExampleReadOptions() {
	h, _ := dstest.NewHandler(dstest.Options{})
	ctx := context.Background()
	s := ds.NewStream("http://streams.internal/v1/stream/jobs",
		ds.WithHTTPClient(&http.Client{Transport: dstest.NewTransport(h)}),
		ds.WithContentType("application/json"))
	s.Create(ctx, ds.CreateOptions{})
	ds.AppendJSONBatch(ctx, s, []string{"a", "b"}, ds.AppendOptions{})
	s.CloseStream(ctx)

	opts := ds.ReadOptions{
		Live:        ds.LiveLongPoll,
		Retry:       ds.RetryPolicy{MaxAttempts: ds.UnlimitedAttempts},
		IdleTimeout: 45 * time.Second,
	}
	for it, err := range ds.JSONItems[string](ctx, s, opts) {
		if err != nil {
			fmt.Println("stopped:", err) // 404, 410, 4xx, a malformed body, or ctx's end
			return
		}
		fmt.Println(it.Value)
	}
	fmt.Println("closed")
	// Output:
	// a
	// b
	// closed
}
