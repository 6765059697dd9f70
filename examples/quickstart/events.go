package main

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/sluice-go/sluice/pipeline"
)

// Event is one sample event, as written to the stream and decoded by the producer.
type Event struct {
	ID     int64   `json:"id"`
	User   string  `json:"user"`
	Type   string  `json:"type"`
	Page   string  `json:"page,omitempty"`
	Amount float64 `json:"amount,omitempty"`
}

var pages = []string{"/", "/pricing", "/docs", "/blog", "/signup", "/checkout"}

// sampleEvent returns event i, deterministically: 20% purchases (one in 10,000 with a negative
// amount, which validation rejects), 60% page views, 15% add-to-carts and 5% signups, by 300
// users.
func sampleEvent(i int) Event {
	e := Event{ID: int64(i), User: "u" + itoa(int((uint64(i)*11400714819323198485)>>40)%300)}
	switch r := i % 20; {
	case r < 4:
		e.Type, e.Amount = "purchase", float64(i%100)+0.5
		if i%10_000 == 9_980 {
			e.Amount = -1
		}
	case r < 16:
		e.Type, e.Page = "page_view", pages[i*31%len(pages)]
	case r < 19:
		e.Type, e.Amount = "add_to_cart", float64(i%50)+0.25
	default:
		e.Type = "signup"
	}
	return e
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

// Aggregate is what the analytics batcher keeps per key.
type Aggregate struct {
	Count  int64
	Users  int
	Amount float64
}

// analytics aggregates events per batch key (the event type). Each batch holds the events
// of one key.
type analytics struct {
	mu    sync.Mutex
	keys  map[string]*Aggregate
	users map[string]map[string]struct{}
	n     int64
}

func newAnalytics() *analytics {
	return &analytics{keys: map[string]*Aggregate{}, users: map[string]map[string]struct{}{}}
}

func (a *analytics) HandleBatch(_ context.Context, batch []pipeline.Message[Event], info pipeline.BatchInfo) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	agg := a.keys[info.Key]
	if agg == nil {
		agg = &Aggregate{}
		a.keys[info.Key] = agg
		a.users[info.Key] = map[string]struct{}{}
	}
	users := a.users[info.Key]
	for i := range batch {
		e := &batch[i].Data
		agg.Count++
		agg.Amount += e.Amount
		users[e.User] = struct{}{}
	}
	agg.Users = len(users)
	a.n += int64(len(batch))
	return nil
}

func (a *analytics) total() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

func (a *analytics) snapshot() map[string]Aggregate {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]Aggregate, len(a.keys))
	for k, v := range a.keys {
		out[k] = *v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
