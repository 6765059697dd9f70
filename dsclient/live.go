package dsclient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// readPhase is the state of a reader's live-mode machine.
//
//	LiveOff:      catchUp ──up-to-date──▶ end
//	LiveAuto:     catchUp ──up-to-date──▶ longPoll
//	LiveLongPoll: longPoll
//	LiveSSE:      catchUp ──up-to-date──▶ sse ──data over MaxBytes──▶ catchUp
//	every mode:   ──closed──▶ end
type readPhase uint8

const (
	phaseCatchUp  readPhase = iota // plain GETs
	phaseLongPoll                  // GETs with live=long-poll
	phaseSSE                       // one GET with live=sse, reconnected as needed
	phaseEnd                       // end of input: Next returns io.EOF
)

// advance moves the reader past a finished chunk: its offset, and the phase it leads to.
func (r *ChunkReader) advance(info ChunkInfo) {
	r.offset = info.NextOffset
	switch {
	case info.Closed:
		r.phase = phaseEnd
	case !info.UpToDate:
	case r.opts.Live == LiveOff:
		r.phase = phaseEnd
	case r.opts.Live == LiveAuto:
		r.phase = phaseLongPoll
	case r.opts.Live == LiveSSE:
		r.phase = phaseSSE
	}
}

// longPollAnswer is how long a long-poll may go unanswered before it is given up: the
// server's timeout (configured or learned) plus a margin.
func (r *ChunkReader) longPollAnswer() time.Duration {
	t := r.opts.LongPollTimeout
	if t == 0 {
		t = r.learned
	}
	if t == 0 {
		return r.opts.IdleTimeout
	}
	return t + max(t/2, time.Second)
}

// minLearned is the shortest empty long-poll taken as the server's timeout; quicker ones
// (a server shutting down) teach nothing.
const minLearned = 100 * time.Millisecond

// readRequest returns a GET of the stream at offset.
func (r *ChunkReader) readRequest(offset Offset, live string) *request {
	req := &request{op: OpRead, method: http.MethodGet, offset: offset, safety: idempotent,
		query: []kv{{protocol.ParamOffset, string(offset)}}, answerTimeout: r.opts.IdleTimeout, idleTimeout: r.opts.IdleTimeout}
	if live != "" {
		req.query = append(req.query, kv{protocol.ParamLive, live})
		if r.cursor != "" {
			req.query = append(req.query, kv{protocol.ParamCursor, r.cursor})
		}
	}
	return req
}

// fetch sends one catch-up or long-poll request and wraps its response in a chunk. A
// response that cannot be followed (an offset sent backwards; a malformed one under
// ParseRetry) is retried here.
func (r *ChunkReader) fetch(longPoll bool) (*Chunk, error) {
	for {
		var req *request
		var start time.Time
		if longPoll {
			req = r.readRequest(r.offset, protocol.LiveLongPoll)
			req.answer = func() time.Duration {
				start = time.Now()
				return r.longPollAnswer()
			}
			// A long-poll given up: the learned timeout was too short, or the server is
			// silent; the next attempt waits as long as before anything was learned.
			req.timedOut = func() { r.learned = 0 }
		} else {
			req = r.readRequest(r.offset, "")
		}
		resp, err := r.s.doWith(r.ctx, req, r.rt)
		if err != nil {
			return nil, err
		}
		c := &Chunk{r: r, info: ChunkInfo{StartOffset: r.offset}}
		err = c.attach(resp)
		if err == nil {
			if d := time.Since(start); longPoll && c.status == http.StatusNoContent && !c.info.Closed && d >= minLearned {
				r.learned = max(r.learned, d)
			}
			return c, nil
		}
		e := err.(*Error)
		if !r.transient(e) {
			return nil, e
		}
		if err := r.rt.retry(r.ctx, e); err != nil {
			return nil, err
		}
	}
}

// transient reports whether a read retries e.
func (r *ChunkReader) transient(e *Error) bool {
	if r.ctx.Err() != nil {
		return false
	}
	if e.Kind == ErrParse {
		return r.opts.OnParseError == ParseRetry
	}
	return e.Temporary()
}

// connectSSE opens the SSE connection at the reader's offset.
func (r *ChunkReader) connectSSE() error {
	req := r.readRequest(r.offset, protocol.LiveSSE)
	resp, err := r.s.doWith(r.ctx, req, r.rt)
	if err != nil {
		return err
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), protocol.ContentTypeEventStream) {
		resp.Body.Close()
		return &Error{Op: OpRead, URL: r.s.url, Kind: ErrParse, Offset: r.offset, Status: resp.StatusCode, BytePos: -1,
			Detail: fmt.Sprintf("SSE response has content type %q, want text/event-stream", ct)}
	}
	b64 := strings.EqualFold(strings.TrimSpace(resp.Header.Get(protocol.HeaderSSEEncoding)), protocol.SSEEncodingBase64)
	r.conn = newSSEConn(resp.Body, r.contentType, b64, r.opts.MaxBytes)
	return nil
}

// nextSSE returns the next chunk from the SSE connection, connecting or reconnecting as
// needed: an SSE response that ends, breaks or stays silent is a transient failure, and the
// read goes on from the last control event's offset.
func (r *ChunkReader) nextSSE() (*Chunk, error) {
	for {
		if r.conn == nil {
			if err := r.connectSSE(); err != nil {
				// Failed requests were retried already; a response that is no SSE
				// stream is malformed.
				var e *Error
				if errors.As(err, &e) && e.Kind == ErrParse && r.transient(e) {
					if err := r.rt.retry(r.ctx, e); err != nil {
						return nil, err
					}
					continue
				}
				return nil, err
			}
		}
		data, ctl, err := r.conn.next()
		if err == nil {
			next := Offset(*ctl.NextOffset)
			if e := r.checkOffset(r.offset, next, r.conn.hasData(data), LiveSSE); e != nil {
				r.dropSSE(e)
				if err := r.rt.retry(r.ctx, e); err != nil {
					return nil, err
				}
				continue
			}
			r.rt.progress() // a complete control event
			if ctl.Cursor != "" {
				r.cursor = ctl.Cursor
			}
			c := &Chunk{r: r, json: r.conn.json, info: ChunkInfo{
				StartOffset: r.offset, NextOffset: next, Cursor: ctl.Cursor,
				UpToDate: ctl.UpToDate || ctl.Closed, Closed: ctl.Closed, ContentType: r.conn.ctype}}
			c.setMem(data)
			return c, nil
		}
		if r.ctx.Err() != nil {
			r.dropSSE(nil)
			return nil, r.ctxError(r.offset)
		}
		if errors.Is(err, errSSEOverflow) {
			// Too much data at once for SSE: catch up with a plain request, read as a
			// stream, and come back to SSE at the tail.
			r.dropSSE(nil)
			r.phase = phaseCatchUp
			return r.fetch(false)
		}
		e := r.sseError(err)
		r.dropSSE(e)
		if !r.transient(e) {
			return nil, e
		}
		if err := r.rt.retry(r.ctx, e); err != nil {
			return nil, err
		}
	}
}

// sseError classifies the error that ended an SSE connection.
func (r *ChunkReader) sseError(err error) *Error {
	e := &Error{Op: OpRead, URL: r.s.url, Kind: ErrNetwork, Offset: r.offset, Err: err, BytePos: -1}
	var pe *sseParseError
	switch {
	case errors.As(err, &pe):
		e.Kind, e.BytePos = ErrParse, pe.pos
	case errors.Is(err, errIdle):
		e.Kind, e.Err = ErrTimeout, fmt.Errorf("no SSE event within %s", r.opts.IdleTimeout)
	case err == io.EOF:
		e.Detail, e.Err = "the server ended the SSE response", nil
	}
	return e
}

// dropSSE closes the SSE connection, reporting the reconnect that follows when cause is set.
func (r *ChunkReader) dropSSE(cause *Error) {
	if r.conn != nil {
		r.conn.close()
		r.conn = nil
	}
	if cause != nil {
		if obs := r.s.cfg.observer; obs != nil {
			var err error = cause
			if cause.Kind == ErrNetwork && cause.Err == nil {
				err = nil // an orderly end of the response
			}
			obs.Reconnect(ReconnectEvent{URL: r.s.url, Live: LiveSSE, Offset: r.offset, Err: err})
		}
	}
}

// checkOffset checks the next offset a response (or an SSE control event) hands back for a
// read at from: offsets only grow (protocol section 8), so a lower one, or the same one with
// data, must not be followed. Sentinels asked for are not compared; a sentinel handed back is
// never valid. It reports a rejection to the observer and returns it as an error.
func (r *ChunkReader) checkOffset(from, next Offset, hasData bool, live LiveMode) *Error {
	var detail string
	switch {
	case next.IsSentinel():
		detail = "the server returned a sentinel as the next offset"
	case from.IsSentinel():
		return nil
	case next < from:
		detail = "the server's next offset is lower than the offset asked for"
	case next == from && hasData:
		detail = "the server returned data without advancing the offset"
	default:
		return nil
	}
	if oo, ok := r.s.cfg.observer.(OffsetObserver); ok {
		oo.OffsetRejected(OffsetRejectedEvent{URL: r.s.url, Live: live, Requested: from, Returned: next, WithData: hasData})
	}
	return &Error{Op: OpRead, URL: r.s.url, Kind: ErrOffsetRegressed, Offset: from, ReturnedOffset: next, Detail: detail, BytePos: -1}
}
