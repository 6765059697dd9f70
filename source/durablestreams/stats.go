package durablestreams

import (
	"time"

	"github.com/sluice-go/sluice/ack"
)

// ProducerStats is a snapshot of a [Producer]'s progress.
type ProducerStats struct {
	// Committed is the committed position.
	Committed ack.Position
	// Read is where reading stands: after the last message handed out, or after the last
	// response read.
	Read ack.Position
	// Pending is the number of messages handed out and not yet finished (CommitOnAck).
	Pending int
	// AtTail reports whether the last response read reached the stream's tail.
	AtTail bool
	// OldestPending is the age of the response holding the oldest unfinished message, or 0
	// when every message handed out is finished.
	OldestPending time.Duration
	// Chunks, Messages and DecodeFailures count the responses read and the messages handed
	// to the pipeline (failed decodes included) since the producer started.
	Chunks, Messages, DecodeFailures uint64
}

// Stats returns a snapshot of the producer's progress. Safe for concurrent use; it does not
// block on a running Produce, and reads only what the producer's records already hold.
func (p *Producer[T]) Stats() ProducerStats {
	st := ProducerStats{
		Committed:      p.Committed(),
		Read:           p.Committed(),
		AtTail:         p.atTail.Load(),
		Chunks:         p.chunks.Load(),
		Messages:       p.messages.Load(),
		DecodeFailures: p.decodeKO.Load(),
	}
	if r := p.reading.Load(); r != nil {
		st.Read = *r
	}
	t := p.tracker.Load()
	if t == nil {
		return st
	}
	st.Pending = t.Pending()
	if st.Pending > 0 {
		// The oldest unfinished message is in the chunk of the committed mark, or in the
		// one after it when the mark ends its chunk.
		mk := t.Committed()
		c := mk.c
		switch {
		case c == nil:
			c = p.head.Load()
		case mk.end:
			c = c.succ.Load()
		}
		if c != nil {
			st.OldestPending = time.Since(c.fetched)
		}
	}
	return st
}
