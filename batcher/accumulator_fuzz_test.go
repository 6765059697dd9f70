package batcher_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluice-go/sluice/batcher"
)

// model is a plain restatement of the batching rules, one map of open batches and no
// cleverness, against which the Accumulator is compared step by step.
type model struct {
	cfg    batcher.Config
	open   map[string]*modelBatch
	opened int
	ready  []closed
}

type modelBatch struct {
	items []int
	bytes int
	first time.Time
	order int
}

func newModel(cfg batcher.Config) *model {
	return &model{cfg: cfg, open: map[string]*modelBatch{}}
}

func (m *model) close(key string, t batcher.Trigger) {
	b := m.open[key]
	delete(m.open, key)
	m.ready = append(m.ready, closed{key, b.items, b.bytes, t})
}

func (m *model) add(key string, v, bytes int, now time.Time) {
	if b := m.open[key]; b != nil && m.cfg.MaxBytes > 0 && b.bytes+bytes > m.cfg.MaxBytes {
		m.close(key, batcher.TriggerBytes)
	}
	b := m.open[key]
	if b == nil {
		b = &modelBatch{first: now, order: m.opened}
		m.opened++
		m.open[key] = b
	}
	b.items = append(b.items, v)
	b.bytes += bytes
	switch {
	case len(b.items) >= m.cfg.Size:
		m.close(key, batcher.TriggerSize)
	case m.cfg.MaxBytes > 0 && b.bytes >= m.cfg.MaxBytes:
		m.close(key, batcher.TriggerBytes)
	}
}

// byOrder returns the keys of the open batches that pass keep, in the order they opened.
func (m *model) byOrder(keep func(*modelBatch) bool) []string {
	var keys []string
	for k, b := range m.open {
		if keep(b) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return m.open[a].order - m.open[b].order })
	return keys
}

func (m *model) expire(now time.Time) {
	if m.cfg.Timeout <= 0 {
		return
	}
	for _, k := range m.byOrder(func(b *modelBatch) bool { return !b.first.Add(m.cfg.Timeout).After(now) }) {
		m.close(k, batcher.TriggerTimeout)
	}
}

func (m *model) flush() {
	for _, k := range m.byOrder(func(*modelBatch) bool { return true }) {
		m.close(k, batcher.TriggerFlush)
	}
}

func (m *model) nextDeadline() (time.Time, bool) {
	if m.cfg.Timeout <= 0 || len(m.open) == 0 {
		return time.Time{}, false
	}
	var d time.Time
	for _, b := range m.open {
		if dl := b.first.Add(m.cfg.Timeout); d.IsZero() || dl.Before(d) {
			d = dl
		}
	}
	return d, true
}

func (m *model) pending() int {
	n := 0
	for _, b := range m.open {
		n += len(b.items)
	}
	return n
}

// checkAgainstModel drives an Accumulator and the model with the operations encoded in ops
// and fails at the first difference.
func checkAgainstModel(t *testing.T, cfg batcher.Config, ops []byte) {
	t.Helper()
	a := batcher.New[int](cfg, nil)
	m := newModel(cfg)
	now := t0
	next := 0
	for i, op := range ops {
		switch {
		case op < 200: // add an item to one of 8 keys, with a size of 0 to 24 bytes
			key := string(rune('a' + op%8))
			bytes := int(op/8) % 25
			a.Add(key, &next, bytes, now)
			m.add(key, next, bytes, now)
			next++
		case op < 240: // time passes, then timeouts are applied
			now = now.Add(time.Duration(op-199) * 250 * time.Millisecond)
			a.Expire(now)
			m.expire(now)
		case op < 250: // time passes without Expire (the timer has not fired yet)
			now = now.Add(time.Duration(op-239) * 100 * time.Millisecond)
		default:
			a.Flush()
			m.flush()
		}
		got, want := take(a), m.ready
		m.ready = nil
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("op %d (%d): closed batches\n got %v\nwant %v", i, op, got, want)
		}
		if a.Pending() != m.pending() || a.OpenBatches() != len(m.open) {
			t.Fatalf("op %d: Pending %d, OpenBatches %d; want %d, %d", i, a.Pending(), a.OpenBatches(), m.pending(), len(m.open))
		}
		gd, gok := a.NextDeadline()
		wd, wok := m.nextDeadline()
		if gok != wok || !gd.Equal(wd) {
			t.Fatalf("op %d: NextDeadline = %v, %v; want %v, %v", i, gd, gok, wd, wok)
		}
	}
	a.Flush()
	m.flush()
	if got, want := take(a), m.ready; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("final flush\n got %v\nwant %v", got, want)
	}
}

var modelConfigs = []batcher.Config{
	{Size: 1},
	{Size: 3},
	{Size: 5, Timeout: time.Second},
	{Size: 4, MaxBytes: 30},
	{Size: 100, MaxBytes: 40, Timeout: 3 * time.Second},
}

func TestAccumulatorAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, cfg := range modelConfigs {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			for range 80 {
				ops := make([]byte, rng.IntN(400))
				for i := range ops {
					ops[i] = byte(rng.IntN(256))
				}
				checkAgainstModel(t, cfg, ops)
			}
		})
	}
}

func FuzzAccumulator(f *testing.F) {
	f.Add(uint8(3), uint8(0), uint8(0), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 210, 255})
	f.Add(uint8(5), uint8(30), uint8(4), []byte{10, 18, 26, 200, 34, 220, 42, 239, 245, 50, 255, 60})
	f.Add(uint8(100), uint8(12), uint8(1), []byte{199, 191, 183, 240, 175, 230, 167, 255})
	f.Fuzz(func(t *testing.T, size, maxBytes, timeoutSec uint8, ops []byte) {
		cfg := batcher.Config{
			Size:     int(size%64) + 1,
			MaxBytes: int(maxBytes),
			Timeout:  time.Duration(timeoutSec%16) * time.Second,
		}
		checkAgainstModel(t, cfg, ops)
	})
}
