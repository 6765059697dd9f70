package dstest

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// sseEventBudget is the most stored bytes one SSE data event carries when Options.MaxChunkBytes
// sets no smaller limit.
const sseEventBudget = 256 << 10

// serveSSE streams the stream as Server-Sent Events (PROTOCOL.md 5.8): a data event for each
// batch of records, each followed by a control event with the next offset; a control event
// when caught up, and a keep-alive control event after each idle LongPollTimeout; a closing
// control event and the end of the response when the stream is closed and every record was
// sent.
func (h *Handler) serveSSE(w *response, r *http.Request, s *stream, q readRequest) {
	hd := w.Header()
	hd.Set("Content-Type", protocol.ContentTypeEventStream)
	hd.Set("Cache-Control", "no-cache")
	if s.binary {
		hd.Set(protocol.HeaderSSEEncoding, protocol.SSEEncodingBase64)
	}
	w.WriteHeader(http.StatusOK)

	budget := sseEventBudget
	if h.opts.MaxChunkBytes > 0 {
		budget = min(budget, h.opts.MaxChunkBytes)
	}
	var lifetime <-chan time.Time
	if h.opts.SSELifetime > 0 {
		t := time.NewTimer(h.opts.SSELifetime)
		defer t.Stop()
		lifetime = t.C
	}
	keepAlive := time.NewTimer(h.opts.LongPollTimeout)
	defer keepAlive.Stop()

	e := sseWriter{w: w, stream: s}
	from := q.from
	announced := false // a control event has told the client it is caught up
	for {
		v := readFrom(s, from, budget)
		if v.plan.n > 0 {
			s.touch(time.Now())
			from = v.plan.next
			e.data(&v.plan)
			up := v.upToDate()
			closed := v.closed && up
			e.control(from, h.cursor(q.cursor), up, closed)
			w.Flush()
			if closed {
				return
			}
			announced = up
			if !up {
				continue
			}
		} else {
			if v.closed {
				e.control(v.tail, "", true, true)
				w.Flush()
				return
			}
			if !announced {
				e.control(v.tail, h.cursor(q.cursor), true, false)
				w.Flush()
				announced = true
			}
		}
		if !keepAlive.Stop() {
			select {
			case <-keepAlive.C:
			default:
			}
		}
		keepAlive.Reset(h.opts.LongPollTimeout)
		h.waiting(s)
		select {
		case <-v.changed:
			if s.dead.Load() {
				return
			}
		case <-keepAlive.C:
			e.control(from, h.cursor(q.cursor), true, false)
			w.Flush()
		case <-lifetime:
			return
		case <-h.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// sseWriter writes the events of one SSE response.
type sseWriter struct {
	w      *response
	stream *stream
	buf    bytes.Buffer
}

// data writes one data event holding the plan's records: a JSON array for a JSON stream,
// base64 for a binary one, else the text with each line in its own data field.
func (e *sseWriter) data(plan *readPlan) {
	b := &e.buf
	b.Reset()
	b.WriteString("event: data\n")
	switch {
	case e.stream.json:
		b.WriteString("data:")
		writeParts(b, true, plan.parts)
		b.WriteByte('\n')
	case e.stream.binary:
		b.WriteString("data:")
		enc := base64.NewEncoder(base64.StdEncoding, b)
		for _, p := range plan.parts {
			enc.Write(p)
		}
		enc.Close()
		b.WriteByte('\n')
	default:
		// Every CR, LF or CRLF starts a new data line, so no payload can end the event early.
		b.WriteString("data:")
		var prevCR bool
		for _, p := range plan.parts {
			for _, c := range p {
				switch {
				case c == '\n' && prevCR:
				case c == '\r' || c == '\n':
					b.WriteString("\ndata:")
				default:
					b.WriteByte(c)
				}
				prevCR = c == '\r'
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	e.w.Write(b.Bytes())
	e.w.sseEvent()
}

// control writes a control event. A closing one carries no cursor.
func (e *sseWriter) control(next uint64, cursor string, upToDate, closed bool) {
	b := &e.buf
	b.Reset()
	b.WriteString("event: control\ndata:{\"streamNextOffset\":\"")
	b.Write(appendOffset(b.AvailableBuffer(), next))
	b.WriteByte('"')
	if !closed && cursor != "" {
		b.WriteString(`,"streamCursor":"`)
		b.WriteString(cursor)
		b.WriteByte('"')
	}
	if upToDate || closed {
		b.WriteString(`,"upToDate":true`)
	}
	if closed {
		b.WriteString(`,"streamClosed":true`)
	}
	b.WriteString("}\n\n")
	e.w.Write(b.Bytes())
	e.w.sseEvent()
}
