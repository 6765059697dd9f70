package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
)

func TestWorkModesAgree(t *testing.T) {
	for _, id := range []int64{0, 7, 99, 100, 12345, 999_999, 10_000_000} {
		p := payload(id)
		jid, jc, err := workJSON(p)
		if err != nil {
			t.Fatalf("workJSON(%s): %v", p, err)
		}
		nid, nc, err := workNoAlloc(p)
		if err != nil {
			t.Fatalf("workNoAlloc(%s): %v", p, err)
		}
		if jid != id || nid != id || jc != centsOf(id) || nc != centsOf(id) {
			t.Errorf("payload %s: json (%d, %d), noalloc (%d, %d), want (%d, %d)", p, jid, jc, nid, nc, id, centsOf(id))
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _, _ = workNoAlloc(payload(42)) }); allocs != 1 {
		t.Errorf("payload and noalloc work: %v allocations, want 1 (the payload)", allocs)
	}
	for _, bad := range []string{`{}`, `{"id":1}`, `{"id":1,"amount":x}`, `not json`} {
		if _, _, err := workNoAlloc([]byte(bad)); err == nil {
			t.Errorf("workNoAlloc(%s): no error", bad)
		}
		if _, _, err := workJSON([]byte(bad)); err == nil {
			t.Errorf("workJSON(%s): no error", bad)
		}
	}
}

func TestCheckerCatchesEveryBreach(t *testing.T) {
	const n = 10
	good := func() *checker {
		c := newChecker(n)
		for i := range int64(n) {
			c.batch(1, centsOf(i))
			c.ack(i)
		}
		return c
	}
	if err := good().verdict(); err != nil {
		t.Fatalf("exactly-once run judged invalid: %v", err)
	}
	cases := map[string]func(c *checker){
		"twice":        func(c *checker) { c.ack(3) },
		"out of range": func(c *checker) { c.ack(n) },
		"failed":       func(c *checker) { c.fail() },
		"sum":          func(c *checker) { c.sum.Add(1) },
		"batched":      func(c *checker) { c.batched.Add(1) },
	}
	for name, breach := range cases {
		c := good()
		breach(c)
		if err := c.verdict(); err == nil {
			t.Errorf("%s: judged exactly-once", name)
		}
	}
	c := newChecker(n)
	for i := range int64(n - 1) {
		c.batch(1, centsOf(i))
		c.ack(i)
	}
	c.ack(0)
	if err := c.verdict(); err == nil || !strings.Contains(err.Error(), "never acked") {
		t.Errorf("a duplicate standing in for a lost message: verdict %v, want never acked", err)
	}
}

func TestEveryVariantIsExactlyOnce(t *testing.T) {
	n := 5_000
	if testing.Short() {
		n = 500
	}
	for _, v := range variants {
		for _, mode := range []string{modeJSON, modeNoAlloc} {
			t.Run(v.name+"/"+mode, func(t *testing.T) {
				res := runChild(v.name, mode, n, time.Minute, "", "")
				if res.Err != "" {
					t.Fatal(res.Err)
				}
				if res.ElapsedNS <= 0 {
					t.Errorf("elapsed %d ns", res.ElapsedNS)
				}
			})
		}
	}
}

func TestCheckerAsAcknowledger(t *testing.T) {
	const n = 4
	c := newChecker(n)
	for i := range int64(n) {
		c.batch(1, centsOf(i))
	}
	c.Ack([]ack.Ref{{N: 0}, {N: 2}}, nil)
	c.Ack([]ack.Ref{{N: 1}, {N: 3}}, nil)
	select {
	case <-c.done:
	default:
		t.Fatal("done not closed after every message was acknowledged")
	}
	if err := c.verdict(); err != nil {
		t.Fatal(err)
	}
	c.Ack(nil, []ack.Failure{{Ref: ack.Ref{N: 1}, Err: errBadOrder}})
	if err := c.verdict(); err == nil {
		t.Error("a failure judged exactly-once")
	}
}
