package dssink

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/pipeline"
)

// ErrOutOfOrder is matched (with errors.Is) by the error of a message the sink refused
// because its position is not after the last position the sink wrote for the message's
// source stream and batch key: the pipeline did not deliver that stream's messages in
// order (see the package documentation). The error is permanent ([pipeline.IsPermanent]):
// the message goes to the failure handler instead of being written out of order, or
// being taken for one written already.
var ErrOutOfOrder = errors.New("dssink: message out of position order")

// Many is what Options.Value returns to append several values for one message, each as one
// message of the output stream (in order, in the same request, so that a redelivery finds
// all of them written or none). An empty Many appends nothing.
type Many []any

// maxPosition is the largest position the sink can write: a position is an idempotent
// producer epoch, at most 2^53-1.
const maxPosition = 1<<53 - 1

// probeSeq is the producer sequence of a probe: no state of the sink's own can accept it, so
// the server answers with what it holds instead of storing anything.
const probeSeq = maxPosition

// Sink is a [pipeline.BatchHandler] that appends one item per message of each batch to an
// output durable stream, so that a batch the pipeline delivers again (after a crash, a
// restart or a retry) is not appended twice. See the package documentation for how, and
// for the conditions. It is safe for concurrent use: batches of different source streams or
// batch keys are written in parallel, those of one are written one at a time.
type Sink[T any] struct {
	o Options[T]

	ctMu sync.Mutex
	json bool // the output stream is a JSON stream
	ct   bool // json is known

	mu     sync.Mutex
	groups map[groupKey]*group

	written, skipped, refused, requests, probes atomic.Int64
}

var _ pipeline.BatchHandler[int] = (*Sink[int])(nil)

// groupKey identifies the messages the sink writes under one producer ID: those of one
// source stream and batch key.
type groupKey struct{ stream, key string }

// group is what the sink knows of one producer ID's state on the server: the highest
// source position written (the producer's epoch).
type group struct {
	mu    sync.Mutex // held while a batch of the group is written
	id    string     // the idempotent-producer ID
	known bool       // last and floor hold: false at start and after an append of unknown outcome
	last  int64      // the highest position in the output stream (-1: none)
	floor int64      // positions up to floor were written before this sink learned of them
}

// item is one message's output.
type item struct {
	i    int // index in the batch
	pos  int64
	data []byte
}

// Stats counts what a sink did. Each message handed to the sink is counted at most once
// per delivery, in one of Written, Skipped and Refused (or in none, when it failed to
// encode, has no item, or is still to be retried).
type Stats struct {
	// Written is the number of messages whose item this sink appended.
	Written int64
	// Skipped is the number of messages found in the output stream already (a redelivery
	// of messages written before a crash or a retry) and not appended again.
	Skipped int64
	// Refused is the number of messages failed with [ErrOutOfOrder].
	Refused int64
	// Requests is the number of append requests that stored items.
	Requests int64
	// Probes is the number of requests that asked the server for the last position written
	// under one of the sink's producer IDs (at start, and after an append of unknown
	// outcome).
	Probes int64
}

// New validates opts and returns a sink. It does no I/O. Invalid options are reported all
// at once in a *[pipeline.OptionsError], each problem naming its field.
func New[T any](opts Options[T]) (*Sink[T], error) {
	o, err := opts.check()
	if err != nil {
		return nil, err
	}
	s := &Sink[T]{o: o, groups: make(map[groupKey]*group)}
	if o.ContentType != "" {
		s.json, s.ct = isJSON(o.ContentType), true
	}
	return s, nil
}

// Stats returns the sink's counters.
func (s *Sink[T]) Stats() Stats {
	return Stats{Written: s.written.Load(), Skipped: s.skipped.Load(), Refused: s.refused.Load(),
		Requests: s.requests.Load(), Probes: s.probes.Load()}
}

// HandleBatch appends the items of the batch's messages to the output stream, in position
// order within each source stream, skipping the messages a previous delivery wrote. It
// marks each message it could not write as failed: bad data (an item that does not encode,
// a position out of order) permanently, anything else (the server unreachable, the stream
// missing) as a transient failure that the pipeline retries. It returns an error only when
// the output stream's content type cannot be learned. It blocks for the round trips;
// ctx bounds them.
func (s *Sink[T]) HandleBatch(ctx context.Context, batch []pipeline.Message[T], info pipeline.BatchInfo) error {
	if err := s.contentType(ctx); err != nil {
		return err
	}
	idx := make([]int, 0, len(batch))
	for i := range batch {
		if !batch[i].Failed() {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		ma, mb := &batch[a].Metadata, &batch[b].Metadata
		if c := strings.Compare(ma.Stream, mb.Stream); c != 0 {
			return c
		}
		return cmp.Compare(ma.Position, mb.Position)
	})
	for len(idx) > 0 {
		stream := batch[idx[0]].Metadata.Stream
		n := 1
		for n < len(idx) && batch[idx[n]].Metadata.Stream == stream {
			n++
		}
		s.write(ctx, s.group(stream, info.Key), batch, idx[:n])
		idx = idx[n:]
	}
	return nil
}

// contentType learns whether the output stream is a JSON stream, once.
func (s *Sink[T]) contentType(ctx context.Context) error {
	s.ctMu.Lock()
	defer s.ctMu.Unlock()
	if s.ct {
		return nil
	}
	info, err := s.o.Stream.Head(ctx)
	if err != nil {
		return fmt.Errorf("dssink: the output stream's content type: %w", err)
	}
	s.json, s.ct = isJSON(info.ContentType), true
	s.o.ContentType = info.ContentType
	return nil
}

// group returns the state of the producer ID of a source stream and batch key.
func (s *Sink[T]) group(stream, key string) *group {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := groupKey{stream, key}
	g := s.groups[k]
	if g == nil {
		g = &group{id: s.o.ID + "|" + url.QueryEscape(stream) + "|" + url.QueryEscape(key), last: -1, floor: -1}
		s.groups[k] = g
	}
	return g
}

// write appends the items of the messages batch[idx] (one source stream, sorted by
// position) under g's producer ID.
func (s *Sink[T]) write(ctx context.Context, g *group, batch []pipeline.Message[T], idx []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	items := s.encode(batch, idx)
	if len(items) == 0 {
		return
	}
	if !g.known {
		var err error
		if items, err = s.probe(ctx, g, items); err != nil {
			fail(batch, items, err)
			return
		}
	}
	items = s.filter(g, batch, items)
	limit := s.o.MaxRequestBytes
	for len(items) > 0 {
		n, body := s.request(items, limit)
		last := items[n-1].pos
		_, err := s.o.Stream.Append(ctx, body, dsclient.AppendOptions{ContentType: s.o.ContentType,
			Idempotent: &dsclient.IdempotentHeaders{ID: g.id, Epoch: last, Seq: 0}})
		var e *dsclient.Error
		errors.As(err, &e)
		switch {
		case err == nil:
			// Stored now, or (a duplicate answer) by an earlier attempt of this append whose
			// answer was lost.
			g.last = last
			s.written.Add(int64(n))
			s.requests.Add(1)
			items = items[n:]
		case e != nil && e.Kind == dsclient.ErrStaleEpoch && e.Epoch >= last:
			// Another writer under this ID (an earlier run of the program) went past these
			// positions: they are in the stream.
			g.last, g.floor = e.Epoch, e.Epoch
			items = s.filter(g, batch, items)
		case e != nil && (e.Kind == dsclient.ErrPayloadTooLarge || e.Kind == dsclient.ErrBadRequest) && n > 1:
			// The server refused the request whole, storing nothing: find the item it
			// refuses by sending smaller requests.
			limit = max(len(body)/2, 1)
		case e != nil && (e.Kind == dsclient.ErrPayloadTooLarge || e.Kind == dsclient.ErrBadRequest):
			fail(batch, items[:1], pipeline.Permanent(fmt.Errorf("dssink: the output stream refuses the item: %w", err)))
			items = items[1:]
		default:
			// The append may or may not have been stored: ask the server before the next
			// batch of this ID. The pipeline retries these messages.
			g.known = false
			fail(batch, items, fmt.Errorf("dssink: append: %w", err))
			return
		}
	}
}

// encode returns the items of batch[idx], failing the messages that have no valid position
// or do not encode, and leaving out those with nothing to append.
func (s *Sink[T]) encode(batch []pipeline.Message[T], idx []int) []item {
	items := make([]item, 0, len(idx))
	prev := int64(-1)
	for _, i := range idx {
		m := &batch[i]
		p := m.Metadata.Position
		switch {
		case p < 0 || p > maxPosition:
			m.Fail(pipeline.Permanent(fmt.Errorf("dssink: position %d of stream %q is outside [0, 2^53-1]", p, m.Metadata.Stream)))
			continue
		case p == prev:
			s.refused.Add(1)
			m.Fail(pipeline.Permanent(fmt.Errorf("%w: position %d of stream %q appears twice in one batch", ErrOutOfOrder, p, m.Metadata.Stream)))
			continue
		}
		prev = p
		data, err := s.item(m)
		switch {
		case err != nil:
			m.Fail(pipeline.Permanent(fmt.Errorf("dssink: message at position %d of stream %q: %w", p, m.Metadata.Stream, err)))
		case len(data) > 0:
			items = append(items, item{i: i, pos: p, data: data})
		}
	}
	return items
}

// item returns a message's item: nil for none.
func (s *Sink[T]) item(m *pipeline.Message[T]) ([]byte, error) {
	if s.o.Value != nil {
		v, err := s.o.Value(m)
		if err != nil || v == nil {
			return nil, err
		}
		many, ok := v.(Many)
		if !ok {
			return json.Marshal(v)
		}
		var b []byte
		for i, v := range many {
			if i > 0 {
				b = append(b, ',') // the request's array holds each value as one message
			}
			vb, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			b = append(b, vb...)
		}
		return b, nil
	}
	b, err := s.o.Bytes(m)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	if s.json && !json.Valid(b) {
		return nil, errors.New("Bytes returned invalid JSON for a JSON output stream")
	}
	return b, nil
}

// filter drops the items at or below g.floor (written before: they succeed, skipped) and
// fails those above it but not above g.last (out of order).
func (s *Sink[T]) filter(g *group, batch []pipeline.Message[T], items []item) []item {
	k := 0
	for _, it := range items {
		switch {
		case it.pos <= g.floor:
			s.skipped.Add(1)
		case it.pos <= g.last:
			s.refused.Add(1)
			m := &batch[it.i]
			m.Fail(pipeline.Permanent(fmt.Errorf("%w: position %d of stream %q arrived after position %d was written",
				ErrOutOfOrder, it.pos, m.Metadata.Stream, g.last)))
		default:
			items[k] = it
			k++
		}
	}
	return items[:k]
}

// request returns how many of items go into the next request, and its body.
func (s *Sink[T]) request(items []item, limit int) (int, []byte) {
	n, size := 1, len(items[0].data)
	for n < len(items) && size+1+len(items[n].data) <= limit {
		size += 1 + len(items[n].data)
		n++
	}
	body := make([]byte, 0, size+2)
	if s.json {
		body = append(body, '[')
	}
	for i, it := range items[:n] {
		if s.json && i > 0 {
			body = append(body, ',')
		}
		body = append(body, it.data...)
	}
	if s.json {
		body = append(body, ']')
	}
	return n, body
}

// probe learns the highest position written under g's producer ID, from the server, with
// an append that the server refuses (or, for a state no writer of this package leaves,
// finds a duplicate) whatever it holds, and so stores nothing: the ID's epoch is the
// position of the first item, and its sequence probeSeq, which no epoch of the sink reaches.
// The answer says how the server's epoch compares with that position:
//
//	403 stale epoch, with the server's epoch E > position    last = E
//	409 sequence gap, expecting sequence 0: no state          last = -1
//	409 sequence gap, expecting another: epoch = position     last = position
//	400, a new epoch must start at sequence 0: E < position   last < position
//
// It returns the items still to write.
func (s *Sink[T]) probe(ctx context.Context, g *group, items []item) ([]item, error) {
	first := items[0]
	_, body := s.request(items[:1], 0)
	res, err := s.o.Stream.Append(ctx, body, dsclient.AppendOptions{ContentType: s.o.ContentType,
		Idempotent: &dsclient.IdempotentHeaders{ID: g.id, Epoch: first.pos, Seq: probeSeq}})
	s.probes.Add(1)
	var e *dsclient.Error
	errors.As(err, &e)
	last := int64(-1)
	switch {
	case err == nil && res.Duplicate && res.NextOffset == "":
		last = first.pos
	case err == nil:
		// Stored under the probe's numbers: the first item is written.
		last = first.pos
		s.written.Add(1)
		s.requests.Add(1)
		items = items[1:]
	case e != nil && e.Kind == dsclient.ErrStaleEpoch:
		last = e.Epoch
	case e != nil && e.Kind == dsclient.ErrSequenceGap && e.ExpectedSeq == 0:
		last = -1
	case e != nil && e.Kind == dsclient.ErrSequenceGap:
		last = first.pos
	case e != nil && e.Kind == dsclient.ErrBadRequest:
		last = first.pos - 1
	default:
		return items, fmt.Errorf("dssink: asking the output stream for the last position written: %w", err)
	}
	g.known, g.last, g.floor = true, last, last
	return items, nil
}

// fail fails the messages of items with err.
func fail[T any](batch []pipeline.Message[T], items []item, err error) {
	for _, it := range items {
		batch[it.i].Fail(err)
	}
}
