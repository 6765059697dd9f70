package dstest

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

var (
	// decimalRe matches a non-negative decimal integer without sign or leading zeros.
	decimalRe = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
	// contentTypeRe matches the start of a plausible media type.
	contentTypeRe = regexp.MustCompile(`^[\w-]+/[\w-]+`)
)

// createRequest is a parsed PUT.
type createRequest struct {
	contentType  string // "" when a fork inherits its source's
	hasTTL       bool
	ttlSeconds   int64
	expiresAtRaw string
	expiresAt    time.Time
	closed       bool
	forkedFrom   string
	forkOffset   string // as given; "" when absent
	forkPos      uint64
	forkSub      int
}

// serveCreate handles PUT: create a stream, a closed stream, or a fork (PROTOCOL.md 5.1, 4.2).
func (h *Handler) serveCreate(w *response, r *http.Request, path string) {
	var c createRequest
	hd := r.Header
	c.forkedFrom = hd.Get(protocol.HeaderForkedFrom)
	if c.forkedFrom != "" && !strings.HasPrefix(c.forkedFrom, "/") {
		c.forkedFrom = h.opts.Prefix + c.forkedFrom
	}
	c.contentType = strings.TrimSpace(hd.Get("Content-Type"))
	if !contentTypeRe.MatchString(c.contentType) {
		c.contentType = ""
		if c.forkedFrom == "" {
			c.contentType = "application/octet-stream"
		}
	}
	ttl, expires := hd.Get(protocol.HeaderTTL), hd.Get(protocol.HeaderExpiresAt)
	if ttl != "" && expires != "" {
		httpError(w, http.StatusBadRequest, "Stream-TTL and Stream-Expires-At cannot both be set")
		return
	}
	if ttl != "" {
		n, err := strconv.ParseInt(ttl, 10, 64)
		if !decimalRe.MatchString(ttl) || err != nil || n > int64(time.Duration(1<<63-1)/time.Second) {
			httpError(w, http.StatusBadRequest, "invalid Stream-TTL: want a non-negative decimal integer of seconds, got "+strconv.Quote(ttl))
			return
		}
		c.hasTTL, c.ttlSeconds = true, n
	}
	if expires != "" {
		t, err := time.Parse(time.RFC3339Nano, expires)
		if err != nil {
			httpError(w, http.StatusBadRequest, "invalid Stream-Expires-At: want an RFC 3339 timestamp, got "+strconv.Quote(expires))
			return
		}
		c.expiresAtRaw, c.expiresAt = expires, t
	}
	c.closed = isTrue(hd.Get(protocol.HeaderClosed))
	if v := hd.Get(protocol.HeaderForkOffset); v != "" {
		p, ok := parseOffset(v)
		if !ok {
			httpError(w, http.StatusBadRequest, "invalid Stream-Fork-Offset "+strconv.Quote(v))
			return
		}
		c.forkOffset, c.forkPos = v, p
	}
	if vs, present := hd[http.CanonicalHeaderKey(protocol.HeaderForkSubOffset)]; present {
		if c.forkedFrom == "" {
			httpError(w, http.StatusBadRequest, "Stream-Fork-Sub-Offset needs Stream-Forked-From")
			return
		}
		v := ""
		if len(vs) > 0 {
			v = vs[0]
		}
		n, err := strconv.Atoi(v)
		if !decimalRe.MatchString(v) || err != nil {
			httpError(w, http.StatusBadRequest, "invalid Stream-Fork-Sub-Offset: want a non-negative integer, got "+strconv.Quote(v))
			return
		}
		c.forkSub = n
	}

	body, err := h.readBody(r)
	if err != nil {
		bodyError(w, err)
		return
	}
	defer putBuf(body)

	// The initial body: a JSON stream's is validated and flattened before any lock is taken.
	ct := c.contentType
	if ct == "" {
		if src, status := h.lookup(c.forkedFrom); status == 0 {
			ct = src.contentType
		}
	}
	var rec []byte
	if body.Len() > 0 {
		rec = body.Bytes()
		if mediaType(ct) == "application/json" {
			scratch := getBuf()
			defer putBuf(scratch)
			rec, err = jsonRecord(scratch, body.Bytes())
			switch {
			case err == errEmptyArray:
				rec = nil // an empty array creates an empty stream
			case err != nil:
				httpError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
				return
			}
		}
	}

	s, created, status, msg := h.create(path, &c, ct, rec)
	if status != 0 {
		httpError(w, status, msg)
		return
	}
	if created && len(rec) > 0 {
		h.streamAppended(path) // a stream created with data counts as appended to
	}
	s.mu.RLock()
	tail, closed := s.log.tail, s.closed
	s.mu.RUnlock()
	out := w.Header()
	out.Set("Content-Type", s.contentType)
	out.Set(protocol.HeaderNextOffset, formatOffset(tail))
	if closed {
		out.Set(protocol.HeaderClosed, "true")
	}
	if !created {
		w.WriteHeader(http.StatusOK)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	out.Set("Location", scheme+"://"+r.Host+path)
	w.WriteHeader(http.StatusCreated)
}

// create creates the stream at path, or finds the existing one with the same configuration.
// ct is the content type resolved for a fork, rec the initial record (nil for none). On
// failure it returns the status and message to answer.
func (h *Handler) create(path string, c *createRequest, ct string, rec []byte) (s *stream, created bool, status int, msg string) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.creates++
	if h.creates%sweepEvery == 0 {
		h.sweepLocked(now)
	}
	if old := h.streams[path]; old != nil {
		switch {
		case old.softDeleted:
			return nil, false, http.StatusConflict, "the stream was deleted but forks still read through it: its path cannot be reused yet"
		case old.expired(now):
			h.expireLocked(old)
			if old.softDeleted {
				return nil, false, http.StatusConflict, "the stream expired but forks still read through it: its path cannot be reused yet"
			}
		default:
			if h.sameConfig(old, c) {
				return old, false, 0, ""
			}
			return nil, false, http.StatusConflict, "a stream already exists at this path with a different configuration"
		}
	}

	var src *stream
	base := uint64(0)
	var prefix []byte
	if c.forkedFrom != "" {
		src = h.streams[c.forkedFrom]
		switch {
		case src == nil:
			return nil, false, http.StatusNotFound, "fork source not found: " + c.forkedFrom
		case src.softDeleted:
			return nil, false, http.StatusConflict, "the fork source was deleted but forks still read through it"
		case src.expired(now):
			h.expireLocked(src)
			return nil, false, http.StatusNotFound, "fork source not found: " + c.forkedFrom
		}
		if c.contentType != "" && mediaType(c.contentType) != mediaType(src.contentType) {
			return nil, false, http.StatusConflict, "Content-Type differs from the fork source's " + strconv.Quote(src.contentType)
		}
		src.mu.RLock()
		srcTail := src.log.tail
		src.mu.RUnlock()
		base = srcTail
		if c.forkOffset != "" {
			base = c.forkPos
		}
		if base > srcTail {
			return nil, false, http.StatusBadRequest, "Stream-Fork-Offset is beyond the source's tail " + formatOffset(srcTail)
		}
		if c.forkSub > 0 {
			var ok bool
			prefix, ok = subOffsetPrefix(src, base, c.forkSub)
			if !ok {
				return nil, false, http.StatusBadRequest, "Stream-Fork-Sub-Offset " + strconv.Itoa(c.forkSub) + " is past the next record of the source"
			}
		}
		ct = src.contentType
		if c.contentType != "" {
			ct = c.contentType
		}
	} else {
		ct = c.contentType
	}

	s = newStream(path, ct, base)
	s.touch(now)
	s.hasTTL, s.ttlSeconds, s.ttl = c.hasTTL, c.ttlSeconds, time.Duration(c.ttlSeconds)*time.Second
	s.expiresAtRaw, s.expiresAt = c.expiresAtRaw, c.expiresAt
	if src != nil {
		// A fork without its own expiry inherits its source's (PROTOCOL.md 4.2).
		if !c.hasTTL && c.expiresAtRaw == "" {
			s.hasTTL, s.ttlSeconds, s.ttl = src.hasTTL, src.ttlSeconds, src.ttl
			s.expiresAtRaw, s.expiresAt = src.expiresAtRaw, src.expiresAt
		}
		s.source, s.forkPos = src, base
		src.refs++
	}
	if len(prefix) > 0 {
		s.log.append(prefix)
	}
	if len(rec) > 0 {
		s.log.append(rec)
	}
	s.closed = c.closed
	s.cfg = *c
	h.streams[path] = s
	return s, true, 0, ""
}

// sameConfig reports whether an idempotent PUT asks for what created the existing stream:
// content type, expiry, fork parameters, and the stream's current closure.
func (h *Handler) sameConfig(s *stream, c *createRequest) bool {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	was := &s.cfg
	ct, wasCT := c.contentType, was.contentType
	if ct == "" || wasCT == "" { // a fork that inherits its source's content type
		ct, wasCT = s.contentType, s.contentType
		if c.contentType != "" {
			ct = c.contentType
		}
	}
	return mediaType(ct) == mediaType(wasCT) &&
		c.hasTTL == was.hasTTL && c.ttlSeconds == was.ttlSeconds &&
		c.expiresAtRaw == was.expiresAtRaw &&
		c.closed == closed &&
		c.forkedFrom == was.forkedFrom &&
		(c.forkOffset == "" || c.forkPos == s.forkPos) &&
		c.forkSub == was.forkSub
}

// subOffsetPrefix returns the first n values (JSON) or bytes of the source's record that
// starts at pos, or false when there is no such record or it holds fewer.
func subOffsetPrefix(src *stream, pos uint64, n int) ([]byte, bool) {
	v := readFrom(src, pos, 1)
	if v.plan.n == 0 {
		return nil, false
	}
	rec := v.plan.parts[0]
	if src.json {
		k, ok := jsonPrefix(rec, n)
		if !ok {
			return nil, false
		}
		return rec[:k:k], true
	}
	if n > len(rec) {
		return nil, false
	}
	return rec[:n:n], true
}

// sweepEvery is how many creates pass between sweeps of expired streams (which are otherwise
// removed when next touched).
const sweepEvery = 64

// sweepLocked ends every expired stream. The caller holds h.mu.
func (h *Handler) sweepLocked(now time.Time) {
	for _, s := range h.streams {
		if !s.softDeleted && s.expired(now) {
			h.expireLocked(s)
		}
	}
}
