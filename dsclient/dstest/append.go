package dstest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// maxSafeInteger is the largest producer epoch or sequence accepted (2^53-1, as JSON clients
// can hold it exactly).
const maxSafeInteger = 1<<53 - 1

// appendResult is what an append or close decided, written once the stream's lock is released.
type appendResult struct {
	status      int
	msg         string // for errors
	next        string // Stream-Next-Offset, when set
	closed      bool   // Stream-Closed: true
	epoch       string // Producer-Epoch, when set
	seq         string // Producer-Seq, when set
	expectedSeq string
	receivedSeq string
}

func (a *appendResult) write(w *response) {
	hd := w.Header()
	if a.next != "" {
		hd.Set(protocol.HeaderNextOffset, a.next)
	}
	if a.closed {
		hd.Set(protocol.HeaderClosed, "true")
	}
	if a.epoch != "" {
		hd.Set(protocol.HeaderProducerEpoch, a.epoch)
	}
	if a.seq != "" {
		hd.Set(protocol.HeaderProducerSeq, a.seq)
	}
	if a.expectedSeq != "" {
		hd.Set(protocol.HeaderExpectedSeq, a.expectedSeq)
		hd.Set(protocol.HeaderReceivedSeq, a.receivedSeq)
	}
	if a.status >= 400 {
		httpError(w, a.status, a.msg)
		return
	}
	w.WriteHeader(a.status)
}

// parseProducer reads the idempotent-producer headers: all three or none.
func parseProducer(hd http.Header) (p producerTuple, present bool, msg string) {
	id, hasID := hd[http.CanonicalHeaderKey(protocol.HeaderProducerID)]
	epoch, hasEpoch := hd[http.CanonicalHeaderKey(protocol.HeaderProducerEpoch)]
	seq, hasSeq := hd[http.CanonicalHeaderKey(protocol.HeaderProducerSeq)]
	if !hasID && !hasEpoch && !hasSeq {
		return p, false, ""
	}
	if !hasID || !hasEpoch || !hasSeq {
		return p, true, "Producer-Id, Producer-Epoch and Producer-Seq must be sent together"
	}
	p.id = first(id)
	if p.id == "" {
		return p, true, "Producer-Id must not be empty"
	}
	var ok bool
	if p.epoch, ok = parseSafeUint(first(epoch)); !ok {
		return p, true, "invalid Producer-Epoch: want a non-negative integer, got " + strconv.Quote(first(epoch))
	}
	if p.seq, ok = parseSafeUint(first(seq)); !ok {
		return p, true, "invalid Producer-Seq: want a non-negative integer, got " + strconv.Quote(first(seq))
	}
	return p, true, ""
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// parseSafeUint parses decimal digits (leading zeros allowed) up to 2^53-1.
func parseSafeUint(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n <= maxSafeInteger
}

// serveAppend handles POST: append, append and close, or close (PROTOCOL.md 5.2, 5.3).
func (h *Handler) serveAppend(w *response, r *http.Request, path string) {
	hd := r.Header
	closeReq := isTrue(hd.Get(protocol.HeaderClosed))
	seqVals, hasSeq := hd[http.CanonicalHeaderKey(protocol.HeaderSeq)]
	seq := first(seqVals)
	prod, hasProd, msg := parseProducer(hd)
	if msg != "" {
		httpError(w, http.StatusBadRequest, msg)
		return
	}
	body, err := h.readBody(r)
	if err != nil {
		bodyError(w, err)
		return
	}
	defer putBuf(body)
	s, status := h.lookup(path)
	if status != 0 {
		httpError(w, status, missingMessage(status))
		return
	}
	if body.Len() == 0 {
		if !closeReq {
			httpError(w, http.StatusBadRequest, "empty body: an append needs data (or Stream-Closed: true to close)")
			return
		}
		res := s.closeOnly(prod, hasProd)
		res.write(w)
		return
	}
	ct := hd.Get("Content-Type")
	if ct == "" {
		httpError(w, http.StatusBadRequest, "Content-Type is required on an append with a body")
		return
	}
	ctMismatch := mediaType(ct) != mediaType(s.contentType)
	rec := body.Bytes()
	var recErr error
	if s.json && !ctMismatch {
		scratch := getBuf()
		defer putBuf(scratch)
		rec, recErr = jsonRecord(scratch, body.Bytes())
	}

	now := time.Now()
	var res appendResult
	appended := false
	s.mu.Lock()
	switch {
	case s.dead.Load():
		res = appendResult{status: http.StatusNotFound, msg: missingMessage(http.StatusNotFound)}
	case s.closed:
		res = s.closedAnswerLocked(prod, hasProd)
	case ctMismatch:
		res = appendResult{status: http.StatusConflict, msg: "Content-Type " + strconv.Quote(ct) + " does not match the stream's " + strconv.Quote(s.contentType)}
	default:
		if hasProd {
			if v, n := s.checkProducerLocked(prod, now); v != producerAccepted {
				res = producerRefusal(prod, v, n)
				break
			}
		}
		if hasSeq && s.hasSeq && seq <= s.seq {
			res = appendResult{status: http.StatusConflict, msg: "Stream-Seq " + strconv.Quote(seq) + " is not greater than the last, " + strconv.Quote(s.seq)}
			break
		}
		if recErr != nil {
			res = appendResult{status: http.StatusBadRequest, msg: "invalid JSON: " + recErr.Error()}
			break
		}
		tail := s.log.append(rec)
		appended = true
		res = appendResult{status: http.StatusNoContent, next: formatOffset(tail)}
		if hasProd {
			s.commitProducerLocked(prod, now)
			res.status = http.StatusOK
			res.epoch, res.seq = strconv.FormatUint(prod.epoch, 10), strconv.FormatUint(prod.seq, 10)
		}
		if hasSeq {
			s.seq, s.hasSeq = seq, true
		}
		if closeReq {
			s.closed, res.closed = true, true
			s.closedBy, s.closedByP = prod, hasProd
		}
		s.notifyLocked()
		s.touch(now)
	}
	s.mu.Unlock()
	if appended {
		// Subscriptions link and wake before the client hears of the append.
		h.streamAppended(path)
	}
	res.write(w)
}

// closeOnly closes the stream without appending, as a producer's last append when prod is
// present.
func (s *stream) closeOnly(prod producerTuple, hasProd bool) appendResult {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead.Load() {
		return appendResult{status: http.StatusNotFound, msg: missingMessage(http.StatusNotFound)}
	}
	s.touch(now)
	next := formatOffset(s.log.tail)
	if !hasProd {
		if !s.closed {
			s.closed = true
			s.notifyLocked()
		}
		return appendResult{status: http.StatusNoContent, next: next, closed: true}
	}
	if s.closed {
		return s.closedAnswerLocked(prod, true)
	}
	if v, n := s.checkProducerLocked(prod, now); v != producerAccepted {
		return producerRefusal(prod, v, n)
	}
	s.commitProducerLocked(prod, now)
	s.closed, s.closedBy, s.closedByP = true, prod, true
	s.notifyLocked()
	return appendResult{status: http.StatusNoContent, next: next, closed: true,
		epoch: strconv.FormatUint(prod.epoch, 10), seq: strconv.FormatUint(prod.seq, 10)}
}

// closedAnswerLocked answers a write to a closed stream: success when it repeats the producer
// append that closed it, 409 otherwise. The caller holds s.mu.
func (s *stream) closedAnswerLocked(prod producerTuple, hasProd bool) appendResult {
	next := formatOffset(s.log.tail)
	if hasProd && s.closedByP && s.closedBy == prod {
		return appendResult{status: http.StatusNoContent, next: next, closed: true,
			epoch: strconv.FormatUint(prod.epoch, 10), seq: strconv.FormatUint(prod.seq, 10)}
	}
	return appendResult{status: http.StatusConflict, msg: "the stream is closed", next: next, closed: true}
}

// producerRefusal answers an append the producer state refuses; n is the verdict's number.
func producerRefusal(p producerTuple, v producerVerdict, n uint64) appendResult {
	switch v {
	case producerDuplicate:
		return appendResult{status: http.StatusNoContent,
			epoch: strconv.FormatUint(p.epoch, 10), seq: strconv.FormatUint(n, 10)}
	case producerStaleEpoch:
		return appendResult{status: http.StatusForbidden, msg: "stale producer epoch",
			epoch: strconv.FormatUint(n, 10)}
	case producerBadEpochSeq:
		return appendResult{status: http.StatusBadRequest, msg: "a new producer epoch must start at Producer-Seq 0"}
	default:
		return appendResult{status: http.StatusConflict, msg: "producer sequence gap",
			expectedSeq: strconv.FormatUint(n, 10), receivedSeq: strconv.FormatUint(p.seq, 10)}
	}
}

// missingMessage is the message for a 404 or 410 from lookup.
func missingMessage(status int) string {
	if status == http.StatusGone {
		return "stream is gone: it was deleted while forks still read through it"
	}
	return "stream not found"
}
