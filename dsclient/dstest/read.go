package dstest

import (
	"compress/gzip"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// readRequest is a parsed GET.
type readRequest struct {
	offset string // as given; "" when absent
	now    bool   // offset=now
	from   uint64 // position to read after (for now: filled in once the stream is found)
	live   string // "", "long-poll" or "sse"
	cursor string
}

// parseRead validates the query of a GET. It returns a message for a 400 when it is invalid.
func parseRead(r *http.Request) (q readRequest, msg string) {
	vals := r.URL.Query()
	q.live = vals.Get(protocol.ParamLive)
	q.cursor = vals.Get(protocol.ParamCursor)
	offs, hasOffset := vals[protocol.ParamOffset]
	switch {
	case !hasOffset:
	case len(offs) > 1:
		return q, "more than one offset parameter"
	case offs[0] == "":
		return q, "empty offset parameter"
	case offs[0] == protocol.OffsetBeginning:
		q.offset = protocol.OffsetBeginning
	case offs[0] == protocol.OffsetNow:
		q.offset, q.now = protocol.OffsetNow, true
	default:
		p, ok := parseOffset(offs[0])
		if !ok {
			return q, "invalid offset " + strconv.Quote(offs[0]) + ": want -1, now or an offset the server returned"
		}
		q.offset, q.from = offs[0], p
	}
	switch q.live {
	case "", protocol.LiveLongPoll, protocol.LiveSSE:
	default:
		return q, "invalid live mode " + strconv.Quote(q.live) + ": want long-poll or sse"
	}
	if q.live != "" && q.offset == "" {
		return q, "live=" + q.live + " needs an offset parameter"
	}
	return q, ""
}

// serveRead handles GET: catch-up, long-poll and SSE reads (PROTOCOL.md 5.6-5.8, 8).
func (h *Handler) serveRead(w *response, r *http.Request, path string) {
	s, status := h.lookup(path)
	if status != 0 {
		httpError(w, status, missingMessage(status))
		return
	}
	q, msg := parseRead(r)
	if msg != "" {
		httpError(w, http.StatusBadRequest, msg)
		return
	}
	s.touch(time.Now())
	if q.now {
		s.mu.RLock()
		q.from = s.log.tail
		s.mu.RUnlock()
	}
	switch q.live {
	case protocol.LiveSSE:
		h.serveSSE(w, r, s, q)
	case protocol.LiveLongPoll:
		h.serveLongPoll(w, r, s, q)
	default:
		h.serveCatchUp(w, r, s, q)
	}
}

func (h *Handler) serveCatchUp(w *response, r *http.Request, s *stream, q readRequest) {
	v := readFrom(s, q.from, h.opts.MaxChunkBytes)
	if q.now {
		// offset=now: no data, the tail, and nothing to cache.
		hd := w.Header()
		hd.Set("Content-Type", s.contentType)
		hd.Set(protocol.HeaderNextOffset, formatOffset(v.tail))
		hd.Set(protocol.HeaderUpToDate, "true")
		hd.Set("Cache-Control", "no-store")
		if v.closed {
			hd.Set(protocol.HeaderClosed, "true")
		}
		v.plan = readPlan{}
		h.writeData(w, r, s, &v.plan)
		return
	}
	h.writeRead(w, r, s, q, &v, "")
}

func (h *Handler) serveLongPoll(w *response, r *http.Request, s *stream, q readRequest) {
	timer := time.NewTimer(h.opts.LongPollTimeout)
	defer timer.Stop()
	for {
		v := readFrom(s, q.from, h.opts.MaxChunkBytes)
		if v.plan.n > 0 {
			h.writeRead(w, r, s, q, &v, h.cursor(q.cursor))
			return
		}
		hd := w.Header()
		if v.closed {
			hd.Set(protocol.HeaderNextOffset, formatOffset(v.tail))
			hd.Set(protocol.HeaderUpToDate, "true")
			hd.Set(protocol.HeaderClosed, "true")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		timedOut := false
		h.waiting(s)
		select {
		case <-v.changed:
			if s.dead.Load() {
				httpError(w, http.StatusNotFound, missingMessage(http.StatusNotFound))
				return
			}
			continue
		case <-timer.C:
			timedOut = true
		case <-h.done:
			timedOut = true
		case <-r.Context().Done():
			return
		}
		if timedOut {
			hd.Set(protocol.HeaderNextOffset, formatOffset(v.tail))
			hd.Set(protocol.HeaderUpToDate, "true")
			hd.Set(protocol.HeaderCursor, h.cursor(q.cursor))
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
}

// writeRead answers a read that found records (or a catch-up that found none) with the
// protocol's headers; cursor is set for live reads.
func (h *Handler) writeRead(w *response, r *http.Request, s *stream, q readRequest, v *view, cursor string) {
	upToDate := v.upToDate()
	closed := v.closed && upToDate
	next := formatOffset(v.plan.next)
	start := q.offset
	if start == "" {
		start = protocol.OffsetBeginning
	}
	var etag strings.Builder
	etag.Grow(2 + base64.StdEncoding.EncodedLen(len(s.path)) + len(start) + len(next) + 4)
	etag.WriteByte('"')
	etag.WriteString(base64.StdEncoding.EncodeToString([]byte(s.path)))
	etag.WriteByte(':')
	etag.WriteString(start)
	etag.WriteByte(':')
	etag.WriteString(next)
	if closed {
		etag.WriteString(":c")
	}
	etag.WriteByte('"')
	hd := w.Header()
	hd.Set("ETag", etag.String())
	hd.Set(protocol.HeaderNextOffset, next)
	if cursor != "" {
		hd.Set(protocol.HeaderCursor, cursor)
	}
	if upToDate {
		hd.Set(protocol.HeaderUpToDate, "true")
	}
	if closed {
		hd.Set(protocol.HeaderClosed, "true")
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == hd.Get("ETag") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", s.contentType)
	h.writeData(w, r, s, &v.plan)
}

// compressMin is the smallest body worth gzipping.
const compressMin = 1024

// writeData writes the records of plan as a 200 body: as they are stored, or as one JSON
// array for a JSON stream. The records are written straight from the stream's segments.
func (h *Handler) writeData(w *response, r *http.Request, s *stream, plan *readPlan) {
	n := plan.size
	if s.json {
		n = max(n+1, 2) // "[" + values without the last comma + "]"
	}
	hd := w.Header()
	if h.opts.Compression && n >= compressMin && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		hd.Set("Content-Encoding", "gzip")
		hd.Add("Vary", "Accept-Encoding")
		w.WriteHeader(http.StatusOK)
		zw := gzip.NewWriter(w)
		writeParts(zw, s.json, plan.parts)
		zw.Close()
		return
	}
	hd.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
	writeParts(w, s.json, plan.parts)
}

type writer interface{ Write([]byte) (int, error) }

// writeParts writes stored records; for JSON as an array.
func writeParts(w writer, json bool, parts [][]byte) {
	if !json {
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				return
			}
		}
		return
	}
	w.Write([]byte{'['})
	for i, p := range parts {
		if i == len(parts)-1 {
			p = p[:len(p)-1] // the last value's comma
		}
		if _, err := w.Write(p); err != nil {
			return
		}
	}
	w.Write([]byte{']'})
}

// acceptsGzip reports whether an Accept-Encoding value lists gzip with a non-zero quality.
func acceptsGzip(ae string) bool {
	for part := range strings.SplitSeq(ae, ",") {
		name, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(q, 64)
			return err == nil && f > 0
		}
		return true
	}
	return false
}

// serveHead handles HEAD: the stream's metadata (PROTOCOL.md 5.5).
func (h *Handler) serveHead(w *response, path string) {
	s, status := h.lookup(path)
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	s.mu.RLock()
	tail, closed := s.log.tail, s.closed
	s.mu.RUnlock()
	hd := w.Header()
	next := formatOffset(tail)
	hd.Set("Content-Type", s.contentType)
	hd.Set(protocol.HeaderNextOffset, next)
	hd.Set("Cache-Control", "no-store")
	etag := `"` + base64.StdEncoding.EncodeToString([]byte(s.path)) + ":-1:" + next
	if closed {
		hd.Set(protocol.HeaderClosed, "true")
		etag += ":c"
	}
	hd.Set("ETag", etag+`"`)
	if s.hasTTL {
		hd.Set(protocol.HeaderTTL, strconv.FormatInt(s.ttlSeconds, 10))
	}
	if s.expiresAtRaw != "" {
		hd.Set(protocol.HeaderExpiresAt, s.expiresAtRaw)
	}
	w.WriteHeader(http.StatusOK)
}

// serveDelete handles DELETE (PROTOCOL.md 5.4, 4.2): a stream that forks still read through is
// soft-deleted (410 from then on) until its last fork goes.
func (h *Handler) serveDelete(w *response, path string) {
	status := h.delete(path)
	if status != http.StatusNoContent {
		httpError(w, status, missingMessage(status))
		return
	}
	h.streamDeleted(path)
	w.WriteHeader(status)
}

func (h *Handler) delete(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streams[path]
	switch {
	case s == nil:
		return http.StatusNotFound
	case s.softDeleted:
		return http.StatusGone
	case s.expired(time.Now()):
		h.expireLocked(s)
		if s.softDeleted {
			return http.StatusGone
		}
		return http.StatusNotFound
	case s.refs > 0:
		softDeleteLocked(s)
	default:
		h.removeLocked(s)
	}
	return http.StatusNoContent
}
