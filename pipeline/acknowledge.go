package pipeline

import (
	"fmt"
	"unsafe"

	"github.com/sluice-go/sluice/ack"
)

// finishScratch is a goroutine's reusable space for finishing groups of messages.
type finishScratch[T any] struct {
	failed []Message[T] // the failed messages of a group, for the failure handler
	acks   ackScratch
}

// ackScratch is a goroutine's reusable space for building acknowledgement groups.
type ackScratch struct {
	refs  []ack.Ref
	fails []ack.Failure
	seen  []bool
}

// finish ends a group of messages (a batch, or messages a processor finished together): the
// failure handler sees the failed ones, then every acknowledger is told once, and the
// messages leave the in-flight count. After the shutdown timeout it does nothing: the
// messages stay unfinished.
func (r *run[T]) finish(w *finishScratch[T], msgs []Message[T]) {
	if len(msgs) == 0 || r.abandoned.Load() {
		return
	}
	failed := countFailed(msgs)
	halt := false
	if failed > 0 {
		first := firstFailed(msgs)
		if h := r.o.Failure.Handler; h != nil {
			w.failed = w.failed[:0]
			for i := range msgs {
				if msgs[i].err != nil {
					w.failed = append(w.failed, msgs[i])
				}
			}
			err := callFailed(r.hctx, h, w.failed)
			clear(w.failed)
			if err != nil {
				if r.abandoned.Load() {
					return
				}
				halt = true
				r.haltOn(first, err)
			}
		}
		if r.o.Failure.Policy == HaltOnFailure {
			halt = true
			r.haltOn(first, nil)
		}
		if r.abandoned.Load() {
			return
		}
	}
	ended, endedFailed, halted := r.acknowledge(&w.acks, msgs, halt)
	if ended == 0 {
		return
	}
	inflight := r.inflight.Add(-int64(ended))
	r.credits.release(ended)
	if r.observed {
		r.obs.Acked(AckEvent{Pipeline: r.o.Name, Successful: ended - endedFailed, Failed: endedFailed, Halted: halted, InFlight: int(inflight)})
	}
}

func firstFailed[T any](msgs []Message[T]) *Message[T] {
	for i := range msgs {
		if msgs[i].err != nil {
			return &msgs[i]
		}
	}
	return nil
}

// acknowledge tells each distinct acknowledger of msgs, once, which of its messages succeeded
// and which failed (with Halt set on failures when halt). A fanned-out copy only records how
// it ended, unless it is its message's last: then the message is acknowledged with the
// outcome of all its copies. It returns how many messages ended, how many of them failed, and
// how many of those were reported with Halt.
func (r *run[T]) acknowledge(s *ackScratch, msgs []Message[T], halt bool) (ended, failed, halted int) {
	if cap(s.seen) < len(msgs) {
		s.seen = make([]bool, len(msgs))
	}
	seen := s.seen[:len(msgs)]
	clear(seen)
	for start := range msgs {
		if seen[start] {
			continue
		}
		a := msgs[start].Acknowledger()
		refs, fails := s.refs[:0], s.fails[:0]
		for j := start; j < len(msgs); j++ {
			m := &msgs[j]
			if seen[j] || !sameAcknowledger(m.Acknowledger(), a) {
				continue
			}
			seen[j] = true
			err, h := m.err, halt
			if m.copy() { // the message ends with its last copy
				var last bool
				if last, err, h = m.fan().copyDone(m.err, halt); !last {
					continue
				}
			}
			ended++
			if err != nil {
				fails = append(fails, ack.Failure{Ref: m.ref, Err: err, Halt: h})
				failed++
				if h {
					halted++
				}
			} else {
				refs = append(refs, m.ref)
			}
		}
		if a != nil && len(refs)+len(fails) > 0 {
			if err := callAck(a, refs, fails); err != nil {
				r.fail(fmt.Errorf("pipeline: acknowledger: %w", err))
			}
		}
		clear(refs)
		clear(fails)
		s.refs, s.fails = refs[:0], fails[:0]
	}
	return ended, failed, halted
}

// sameAcknowledger reports whether a and b are the same acknowledger: the same dynamic type and
// the same value word. Unlike ==, it never panics, which matters because acknowledgers are
// often functions ([ack.AcknowledgerFunc]), which == cannot compare. Two equal acknowledgers
// held in separate interface boxes count as different, which only splits a group in two.
func sameAcknowledger(a, b ack.Acknowledger) bool {
	type iface struct{ typ, data unsafe.Pointer }
	return *(*iface)(unsafe.Pointer(&a)) == *(*iface)(unsafe.Pointer(&b))
}
