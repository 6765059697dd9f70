package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"
)

// The workload every variant runs: n messages whose payloads are ~100-byte
// JSON orders, made by the producer one allocation each; processors decode
// and transform them; a batcher of batchSize / batchTimeout sums the amounts;
// every message is acknowledged to a checker that proves exactly-once.
const (
	processors   = 4
	batchSize    = 100
	batchTimeout = 50 * time.Millisecond
)

// work modes.
const (
	modeJSON    = "json"    // decode with encoding/json, then transform
	modeNoAlloc = "noalloc" // a cheap transform that allocates nothing
)

// Event is what flows through every pipeline: the producer fills ID and
// Payload, a processor fills Cents and drops the payload.
type Event struct {
	ID      int64
	Payload []byte
	Cents   int64
}

// payload returns the JSON of message id, in one allocation.
func payload(id int64) []byte {
	b := make([]byte, 0, 112)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"user":"u`...)
	b = strconv.AppendInt(b, id%1000, 10)
	b = append(b, `","type":"purchase","amount":`...)
	b = strconv.AppendInt(b, id%100, 10)
	b = append(b, `.5,"currency":"EUR","country":"DE","ts":`...)
	b = strconv.AppendInt(b, 1700000000+id, 10)
	b = append(b, '}')
	return b
}

// centsOf is the amount of message id in cents, as the processors must find it.
func centsOf(id int64) int64 { return (id%100)*100 + 50 }

// expectedSum is the sum of centsOf over ids 0..n-1.
func expectedSum(n int) int64 {
	var s int64
	for i := int64(0); i < int64(n); i++ {
		s += centsOf(i)
	}
	return s
}

// order is the decoded JSON payload.
type order struct {
	ID       int64   `json:"id"`
	User     string  `json:"user"`
	Type     string  `json:"type"`
	Amount   float64 `json:"amount"`
	Currency string  `json:"currency"`
	Country  string  `json:"country"`
	TS       int64   `json:"ts"`
}

var errBadOrder = errors.New("bad order")

// failedCents marks an event whose processing failed.
const failedCents = -1

// process runs the work on e's payload, fills e.Cents (failedCents when the
// payload is bad or names another id), drops the payload and reports success.
func process(e *Event, work workFunc) bool {
	id, cents, err := work(e.Payload)
	e.Payload = nil
	if err != nil || id != e.ID {
		e.Cents = failedCents
		return false
	}
	e.Cents = cents
	return true
}

// workFunc decodes and transforms one payload into its id and amount in cents.
type workFunc func(p []byte) (id, cents int64, err error)

func workFor(mode string) (workFunc, error) {
	switch mode {
	case modeJSON:
		return workJSON, nil
	case modeNoAlloc:
		return workNoAlloc, nil
	}
	return nil, fmt.Errorf("unknown mode %q (want %s or %s)", mode, modeJSON, modeNoAlloc)
}

// workJSON decodes the order with encoding/json and transforms it: it checks
// the type, user and currency and converts the amount to cents.
func workJSON(p []byte) (int64, int64, error) {
	var o order
	if err := json.Unmarshal(p, &o); err != nil {
		return 0, 0, err
	}
	if o.Type != "purchase" || o.Currency != "EUR" || len(o.User) < 2 || o.User[0] != 'u' {
		return 0, 0, errBadOrder
	}
	return o.ID, int64(math.Round(o.Amount * 100)), nil
}

var amountKey = []byte(`"amount":`)

// workNoAlloc finds the id and the amount by scanning the bytes: the same
// result as workJSON for this workload, with no allocation.
func workNoAlloc(p []byte) (int64, int64, error) {
	const idKey = `{"id":`
	if !bytes.HasPrefix(p, []byte(idKey)) {
		return 0, 0, errBadOrder
	}
	id, _, ok := digits(p, len(idKey))
	if !ok {
		return 0, 0, errBadOrder
	}
	i := bytes.Index(p, amountKey)
	if i < 0 {
		return 0, 0, errBadOrder
	}
	whole, j, ok := digits(p, i+len(amountKey))
	if !ok || j+1 >= len(p) || p[j] != '.' {
		return 0, 0, errBadOrder
	}
	frac, _, ok := digits(p, j+1)
	if !ok || frac > 9 {
		return 0, 0, errBadOrder
	}
	return id, whole*100 + frac*10, nil
}

// digits parses the decimal number at p[i:] and returns it with the index
// after it.
func digits(p []byte, i int) (int64, int, bool) {
	start := i
	var v int64
	for ; i < len(p) && p[i] >= '0' && p[i] <= '9'; i++ {
		v = v*10 + int64(p[i]-'0')
	}
	return v, i, i > start
}

// checker proves exactly-once: every id in [0,n) acknowledged once as a
// success, none failed, and the batch handlers saw n messages summing to the
// expected amount. It is safe for concurrent use.
type checker struct {
	n        int64
	seen     []atomic.Uint64 // bit per id
	acked    atomic.Int64
	failed   atomic.Int64
	dups     atomic.Int64
	outside  atomic.Int64
	batched  atomic.Int64
	batches  atomic.Int64
	sum      atomic.Int64
	done     chan struct{}
	doneAt   time.Time
	expected int64
}

func newChecker(n int) *checker {
	return &checker{
		n:        int64(n),
		seen:     make([]atomic.Uint64, (n+63)/64),
		done:     make(chan struct{}),
		expected: expectedSum(n),
	}
}

// mark records that id was acknowledged as a success, without counting it.
func (c *checker) mark(id int64) {
	if id < 0 || id >= c.n {
		c.outside.Add(1)
		return
	}
	bit := uint64(1) << (id & 63)
	if c.seen[id>>6].Or(bit)&bit != 0 {
		c.dups.Add(1)
	}
}

// count records k acknowledgements (successes or failures) and closes done
// when all n have arrived.
func (c *checker) count(k int) {
	if c.acked.Add(int64(k)) == c.n {
		c.doneAt = time.Now()
		close(c.done)
	}
}

// ack records one successful acknowledgement.
func (c *checker) ack(id int64) {
	c.mark(id)
	c.count(1)
}

// fail records one failed acknowledgement.
func (c *checker) fail() {
	c.failed.Add(1)
	c.count(1)
}

// batch records what one batch handler saw.
func (c *checker) batch(size int, cents int64) {
	c.batched.Add(int64(size))
	c.batches.Add(1)
	c.sum.Add(cents)
}

// verdict returns nil when the run was exactly-once, or what was wrong.
func (c *checker) verdict() error {
	var errs []error
	if a := c.acked.Load(); a != c.n {
		errs = append(errs, fmt.Errorf("acked %d of %d", a, c.n))
	}
	if f := c.failed.Load(); f != 0 {
		errs = append(errs, fmt.Errorf("%d failed", f))
	}
	if d := c.dups.Load(); d != 0 {
		errs = append(errs, fmt.Errorf("%d acked twice", d))
	}
	if o := c.outside.Load(); o != 0 {
		errs = append(errs, fmt.Errorf("%d acked ids out of range", o))
	}
	missing := int64(0)
	for i := range c.n {
		if c.seen[i>>6].Load()&(1<<(i&63)) == 0 {
			missing++
		}
	}
	if missing != 0 {
		errs = append(errs, fmt.Errorf("%d ids never acked", missing))
	}
	if b := c.batched.Load(); b != c.n {
		errs = append(errs, fmt.Errorf("batched %d of %d", b, c.n))
	}
	if s := c.sum.Load(); s != c.expected {
		errs = append(errs, fmt.Errorf("sum %d, want %d", s, c.expected))
	}
	return errors.Join(errs...)
}
