package dstest

import "time"

// Idempotent producers (PROTOCOL.md 5.2.1): each producer id has an epoch and the last
// sequence number accepted in it. A stream's producer state is guarded by the stream's mu,
// which also covers the append, so validation and append are one atomic step per stream
// (and so per producer).

type producerTuple struct {
	id         string
	epoch, seq uint64
}

type producerState struct {
	epoch, lastSeq uint64
	updated        time.Time
}

// producerStateTTL is how long an idle producer's state is kept.
const producerStateTTL = 7 * 24 * time.Hour

type producerVerdict int

const (
	producerAccepted    producerVerdict = iota
	producerDuplicate                   // already accepted: answer success without appending
	producerStaleEpoch                  // 403 with the current epoch
	producerBadEpochSeq                 // 400: a new epoch must start at sequence 0
	producerSequenceGap                 // 409 with the expected and received sequences
)

// checkProducerLocked validates p against the stream's state without changing it. It returns
// the verdict and, for a duplicate the last accepted sequence, for a stale epoch the current
// epoch, for a gap the expected sequence. The caller holds s.mu.
func (s *stream) checkProducerLocked(p producerTuple, now time.Time) (producerVerdict, uint64) {
	st := s.producers[p.id]
	if st != nil && now.Sub(st.updated) > producerStateTTL {
		delete(s.producers, p.id)
		st = nil
	}
	switch {
	case st == nil:
		if p.seq != 0 {
			return producerSequenceGap, 0
		}
		return producerAccepted, 0
	case p.epoch < st.epoch:
		return producerStaleEpoch, st.epoch
	case p.epoch > st.epoch:
		if p.seq != 0 {
			return producerBadEpochSeq, 0
		}
		return producerAccepted, 0
	case p.seq <= st.lastSeq:
		return producerDuplicate, st.lastSeq
	case p.seq == st.lastSeq+1:
		return producerAccepted, 0
	default:
		return producerSequenceGap, st.lastSeq + 1
	}
}

// commitProducerLocked records p as the producer's last accepted append. The caller holds s.mu.
func (s *stream) commitProducerLocked(p producerTuple, now time.Time) {
	if s.producers == nil {
		s.producers = make(map[string]*producerState)
	}
	s.producers[p.id] = &producerState{epoch: p.epoch, lastSeq: p.seq, updated: now}
}
