package pipeline

import (
	"sync"
	"sync/atomic"
)

// fanout is the set of batchers of a message routed to several ([Message.SetBatchers]) and,
// once it is routed, the state its copies share: the message is acknowledged when the last
// copy has finished, as failed if any copy failed.
type fanout struct {
	names   []string    // distinct, in the order given; immutable
	claimed atomic.Bool // routed: the state below belongs to the copies of one message

	left atomic.Int32 // copies not finished
	mu   sync.Mutex
	err  error // the first copy's failure
	halt bool  // a copy's failure was reported with Halt
}

// copyOf reports whether m is a routed copy, whose end goes through its fanout.
func copyOf[T any](m *Message[T]) bool { return m.fan != nil && m.fan.claimed.Load() }

// claim takes f for the copies of one message, or returns a fresh one with the same names if
// f was claimed already (a handler copied a fanned-out message).
func (f *fanout) claim(copies int) *fanout {
	if !f.claimed.CompareAndSwap(false, true) {
		f = &fanout{names: f.names}
		f.claimed.Store(true)
	}
	f.left.Store(int32(copies))
	return f
}

// copyDone records how one copy ended (err nil: successful; halt: its failure is reported
// with Halt). For the last copy it returns true with the message's outcome: the first copy's
// failure, if any, and whether it halts.
func (f *fanout) copyDone(err error, halt bool) (last bool, merr error, mhalt bool) {
	if err != nil {
		f.mu.Lock()
		if f.err == nil {
			f.err = err
		}
		f.halt = f.halt || halt
		f.mu.Unlock()
	}
	if f.left.Add(-1) != 0 {
		return false, nil, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return true, f.err, f.halt && f.err != nil
}
