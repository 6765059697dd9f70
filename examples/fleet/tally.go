package main

import (
	"sort"
	"sync"
	"time"
)

// rowKey is a row's key in the sink: the message's stream and position.
type rowKey struct {
	Stream string
	Pos    int64
}

// tally is the example's sink and its record of what each worker did. Rows are inserted
// if absent, keyed by (stream, position), as a database table with that primary key would
// be: a message delivered again by the worker that takes a claim over adds nothing. It is
// safe for concurrent use.
type tally struct {
	mu         sync.Mutex
	rows       map[rowKey]string // → the worker that inserted it
	misplaced  []string          // rows whose position is not their event's number
	workers    map[string]*workerTally
	order      []string
	wins       []win
	changed    chan struct{} // closed and replaced at every change
	wantRows   int
	deliveries int
}

// workerTally is one worker's part.
type workerTally struct {
	claims   int            // claims won
	ends     map[string]int // claims ended, by reason
	messages int            // messages delivered to the sink (again or not)
	streams  map[string]bool
	held     map[string]bool // subscriptions held now
	killed   time.Time
	state    string // "running", "killed", "drained", or "failed: …"
}

// win is a claim won, for the takeover gap.
type win struct {
	worker, sub string
	at          time.Time
}

func newTally() *tally {
	return &tally{rows: map[rowKey]string{}, workers: map[string]*workerTally{}, changed: make(chan struct{})}
}

func (t *tally) worker(name string) *workerTally {
	w := t.workers[name]
	if w == nil {
		w = &workerTally{ends: map[string]int{}, streams: map[string]bool{}, held: map[string]bool{}, state: "running"}
		t.workers[name] = w
		t.order = append(t.order, name)
	}
	return w
}

func (t *tally) notify() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// insert records a batch of rows written by worker; event numbers are the rows' events'
// own numbers (their position in their stream).
func (t *tally) insert(worker string, keys []rowKey, numbers []int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.worker(worker)
	for i, k := range keys {
		if _, ok := t.rows[k]; !ok {
			t.rows[k] = worker
		}
		if k.Pos != numbers[i] && len(t.misplaced) < 5 {
			t.misplaced = append(t.misplaced, k.Stream)
		}
		w.messages++
		w.streams[k.Stream] = true
		t.deliveries++
	}
	t.notify()
}

func (t *tally) claimWon(worker, sub string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.worker(worker)
	w.claims++
	w.held[sub] = true
	t.wins = append(t.wins, win{worker, sub, at})
	t.notify()
}

func (t *tally) claimEnded(worker, sub, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.worker(worker)
	w.ends[reason]++
	delete(w.held, sub)
	t.notify()
}

// killed marks worker killed at at, and returns the subscriptions it held.
func (t *tally) kill(worker string, at time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.worker(worker)
	w.killed, w.state = at, "killed"
	var held []string
	for s := range w.held {
		held = append(held, s)
	}
	sort.Strings(held)
	return held
}

func (t *tally) setState(worker, state string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.worker(worker).state = state
	t.notify()
}

// busiest returns the running worker holding the most claims and how many it holds ("" and
// 0 if none holds any), and a channel closed at the next change.
func (t *tally) busiest() (string, int, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	best, most := "", 0
	for _, n := range t.order {
		if w := t.workers[n]; w.state == "running" && len(w.held) > most {
			best, most = n, len(w.held)
		}
	}
	return best, most, t.changed
}

// takenOver returns the first claim of sub won after at by a worker other than worker.
func (t *tally) takenOver(sub, worker string, at time.Time) (win, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.takenOverLocked(sub, worker, at)
}

// takenOverLocked is takenOver for a caller holding t.mu.
func (t *tally) takenOverLocked(sub, worker string, at time.Time) (win, bool) {
	for _, w := range t.wins {
		if w.sub == sub && w.worker != worker && w.at.After(at) {
			return w, true
		}
	}
	return win{}, false
}

// wait blocks until cond holds (evaluated under the lock at every change) or the timeout
// passes, and reports whether it held.
func (t *tally) wait(timeout time.Duration, cond func(*tally) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		t.mu.Lock()
		ok, ch := cond(t), t.changed
		t.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}
