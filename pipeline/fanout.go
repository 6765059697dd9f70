package pipeline

import (
	"sync"
	"sync/atomic"

	"github.com/sluice-go/sluice/ack"
)

// fanout is the set of batchers of a message routed to several ([Message.SetBatchers]) and,
// once it is routed, the state its copies share: the message is acknowledged when the last
// copy has finished, as failed if any copy failed. It takes the place of the message's (and
// its copies') acknowledger, and keeps that acknowledger in a.
type fanout struct {
	names   []string         // distinct, in the order given; immutable
	a       ack.Acknowledger // the message's own acknowledger
	claimed atomic.Bool      // routed: the state below belongs to the copies of one message

	left atomic.Int32 // copies not finished
	mu   sync.Mutex
	err  error // the first copy's failure
	halt bool  // a copy's failure was reported with Halt
}

// Ack forwards to the message's acknowledger. The pipeline acknowledges fanned-out messages
// through [fanout.copyDone] and never calls it; it is here so that a fanout can hold the
// place of an acknowledger.
func (f *fanout) Ack(successful []ack.Ref, failed []ack.Failure) {
	if f.a != nil {
		f.a.Ack(successful, failed)
	}
}

// claim takes f for the copies of one message, or returns a fresh one with the same names
// and acknowledger if f was claimed already (a handler copied a fanned-out message).
func (f *fanout) claim(copies int) *fanout {
	if !f.claimed.CompareAndSwap(false, true) {
		f = &fanout{names: f.names, a: f.a}
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
