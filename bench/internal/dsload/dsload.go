// Package dsload holds what the Durable Streams benchmark suites share: the ~100-byte order
// event and its exact checksum, filling a JSON stream, starting the two servers (the
// in-process dstest server and the reference server in Node), medians and percentiles, and the
// machine information printed with the tables.
//
// Nothing here is safe for concurrent use unless its comment says so.
package dsload

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluice-go/sluice/bench/internal/machine"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/refserver"
)

// Event is one order of the benchmark streams: about 100 bytes of JSON, such as
// {"id":123456,"user":"u456","type":"purchase","amount":114,"currency":"EUR","ts":"2024-01-01T00:00:00Z"}.
// Sent, when not zero, is the time the event was appended (Unix nanoseconds), for latency.
type Event struct {
	ID       int64   `json:"id"`
	User     string  `json:"user"`
	Type     string  `json:"type"`
	Amount   float64 `json:"amount"`
	Currency string  `json:"currency"`
	TS       string  `json:"ts"`
	Sent     int64   `json:"sent,omitempty"`
}

// NewEvent returns event id. Its amount is a multiple of 0.25 (see [Quarters]), so that sums
// in float64 are exact in any order.
func NewEvent(id int64) Event {
	return Event{
		ID:       id,
		User:     fmt.Sprintf("u%d", id%1000),
		Type:     "purchase",
		Amount:   float64(Quarters(id)) / 4,
		Currency: "EUR",
		TS:       "2024-01-01T00:00:00Z",
	}
}

// Quarters returns event id's amount in quarters (amount × 4).
func Quarters(id int64) int64 { return id % 1000 }

// QuartersOf converts an amount to quarters; it reports false unless the amount is an exact
// multiple of 0.25.
func QuartersOf(amount float64) (int64, bool) {
	q := int64(amount * 4)
	return q, float64(q) == amount*4
}

// SumQuarters returns the sum of the amounts of events 0..n-1, in quarters.
func SumQuarters(n int64) int64 {
	full, rest := n/1000, n%1000
	return full*(999*1000/2) + rest*(rest-1)/2
}

// Fill creates a JSON stream at s holding events 0..n-1, appended perAppend at a time.
func Fill(ctx context.Context, s *dsclient.Stream, n, perAppend int) error {
	if _, err := s.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("create %s: %w", s.URL(), err)
	}
	batch := make([]Event, 0, perAppend)
	for i := range int64(n) {
		batch = append(batch, NewEvent(i))
		if len(batch) == perAppend || i == int64(n)-1 {
			if _, err := dsclient.AppendJSONBatch(ctx, s, batch, dsclient.AppendOptions{}); err != nil {
				return fmt.Errorf("append to %s: %w", s.URL(), err)
			}
			batch = batch[:0]
		}
	}
	return nil
}

// Transport returns the transport every client of a suite uses: Go's defaults with
// compression off (on loopback gzip costs both sides more than it saves).
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	return t
}

// Server is a running Durable Streams server.
type Server struct {
	// Name is "dstest" or "refserver".
	Name string
	// StreamURL returns the URL of the stream called name.
	StreamURL func(name string) string
	// Close stops the server.
	Close func()
}

// ServerNames are the servers [Start] knows.
var ServerNames = []string{"dstest", "refserver"}

// Start starts the server called name with its default options: "dstest" in this process,
// "refserver" (@durable-streams/server, the version refserver pins) in a child Node process.
func Start(ctx context.Context, name string) (*Server, error) {
	switch name {
	case "dstest":
		srv, err := dstest.NewServer(dstest.Options{})
		if err != nil {
			return nil, err
		}
		return &Server{Name: name, StreamURL: srv.StreamURL, Close: func() { srv.Close() }}, nil
	case "refserver":
		srv, err := refserver.Start(ctx, refserver.Options{})
		if err != nil {
			return nil, err
		}
		return &Server{Name: name, StreamURL: srv.StreamURL, Close: func() { srv.Stop() }}, nil
	}
	return nil, fmt.Errorf("unknown server %q (known: %s)", name, strings.Join(ServerNames, ", "))
}

// Median returns the median of xs (0 if empty); xs is not modified.
func Median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Percentile returns the p-th percentile (0 < p <= 100, nearest rank) of sorted, or 0 if
// it is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// MachineInfo describes the machine and the run: CPU model and count, GOMAXPROCS, Go version,
// OS/architecture and the date (see [machine.Info]).
func MachineInfo() string { return machine.Info() }
