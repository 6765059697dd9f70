package dstest

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A stream is one durable stream. Its configuration is fixed at creation; its lifecycle fields
// are guarded by Handler.mu; its data and writer state by its own mu. Lock order: Handler.mu,
// then a stream's mu, then its source's mu; nothing holding a stream's mu takes Handler.mu.
type stream struct {
	path        string
	contentType string // as given at creation (or inherited by a fork)
	json        bool   // application/json: message boundaries and array flattening
	binary      bool   // neither text/* nor JSON: base64 in SSE

	hasTTL       bool
	ttl          time.Duration
	ttlSeconds   int64
	expiresAtRaw string // as given
	expiresAt    time.Time

	// Fork: the source stream and the position the fork diverges at.
	source  *stream
	forkPos uint64

	cfg createRequest // what the creating PUT asked for, for idempotent PUTs

	lastAccess atomic.Int64 // UnixNano of the last read or append (sliding TTL)
	dead       atomic.Bool  // removed, or soft-deleted: clients can no longer reach it

	// Guarded by Handler.mu.
	refs        int  // forks that read through this stream
	softDeleted bool // deleted (or expired) while forks still read through it

	mu        sync.RWMutex
	log       recordLog
	closed    bool
	closedBy  producerTuple // the producer append that closed the stream, if any
	closedByP bool
	producers map[string]*producerState
	seq       string // last Stream-Seq
	hasSeq    bool
	changed   chan struct{} // closed and replaced whenever data, closure or presence changes
}

// newStream returns an open, empty stream whose log starts at base.
func newStream(path, contentType string, base uint64) *stream {
	media := mediaType(contentType)
	s := &stream{
		path:        path,
		contentType: contentType,
		json:        media == "application/json",
		log:         newRecordLog(base),
		changed:     make(chan struct{}),
	}
	s.binary = !s.json && !strings.HasPrefix(media, "text/")
	s.touch(time.Now())
	return s
}

// mediaType returns the lower-case media type of a Content-Type value, without parameters.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

func (s *stream) touch(now time.Time) { s.lastAccess.Store(now.UnixNano()) }

// expired reports whether the stream's absolute expiry has passed or its TTL has run out
// since the last read or append.
func (s *stream) expired(now time.Time) bool {
	if !s.expiresAt.IsZero() && !now.Before(s.expiresAt) {
		return true
	}
	return s.hasTTL && now.UnixNano() >= s.lastAccess.Load()+int64(s.ttl)
}

// notifyLocked wakes every reader waiting on the stream. The caller holds s.mu for writing.
func (s *stream) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// lookup returns the live stream at path, or the status to answer instead: 404 when there is
// none (or it has expired), 410 when it was deleted but forks still read through it.
func (h *Handler) lookup(path string) (*stream, int) {
	h.mu.RLock()
	s := h.streams[path]
	soft := s != nil && s.softDeleted
	h.mu.RUnlock()
	if s == nil {
		return nil, 404
	}
	if !soft && s.expired(time.Now()) {
		h.mu.Lock()
		if h.streams[path] == s {
			h.expireLocked(s)
		}
		present := h.streams[path] == s
		soft = s.softDeleted
		h.mu.Unlock()
		if !present {
			return nil, 404
		}
	}
	if soft {
		return nil, 410
	}
	return s, 0
}

// expireLocked ends an expired stream: soft-deleted while forks read through it, removed
// otherwise. The caller holds h.mu.
func (h *Handler) expireLocked(s *stream) {
	if s.refs > 0 {
		softDeleteLocked(s)
		return
	}
	h.removeLocked(s)
}

// softDeleteLocked hides s from clients while forks still read through it, and wakes its
// waiters. The caller holds Handler.mu.
func softDeleteLocked(s *stream) {
	s.softDeleted = true
	s.dead.Store(true)
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

// removeLocked removes s, wakes its waiters, and releases its source, removing the source in
// turn when it was soft-deleted and s was its last fork. The caller holds h.mu.
func (h *Handler) removeLocked(s *stream) {
	if h.streams[s.path] == s {
		delete(h.streams, s.path)
	}
	s.dead.Store(true)
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
	if src := s.source; src != nil {
		src.refs--
		if src.refs <= 0 && src.softDeleted {
			h.removeLocked(src)
		}
	}
}

// A view is what one read of a stream saw: the records after a position, and the stream's
// tail, closure and change channel at the moment its own records were read.
type view struct {
	plan    readPlan
	tail    uint64
	closed  bool
	changed <-chan struct{}
}

// upToDate reports whether the view's records reach the tail.
func (v *view) upToDate() bool { return v.plan.next >= v.tail }

// readFrom gathers the records of s after position from, through its fork chain, within the
// byte budget (0 for none).
func readFrom(s *stream, from uint64, budget int) (v view) {
	v.plan.budget = budget
	v.plan.next = from
	if s.source != nil && from < s.forkPos {
		collectInherited(s.source, from, s.forkPos, &v.plan)
	}
	s.mu.RLock()
	if !v.plan.full {
		s.log.collect(from, s.log.tail, &v.plan)
	}
	v.tail, v.closed, v.changed = s.log.tail, s.closed, s.changed
	s.mu.RUnlock()
	if v.plan.n == 0 {
		v.plan.next = v.tail
	}
	return v
}

// collectInherited adds the records of s (and its own sources) that end after from and no
// later than limit. Data before a fork position never changes, so each stream of the chain is
// locked on its own.
func collectInherited(s *stream, from, limit uint64, r *readPlan) {
	if s.source != nil && from < s.forkPos {
		collectInherited(s.source, from, min(limit, s.forkPos), r)
		if r.full {
			return
		}
	}
	s.mu.RLock()
	s.log.collect(from, limit, r)
	s.mu.RUnlock()
}
