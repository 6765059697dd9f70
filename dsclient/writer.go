package dsclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrWriterClosed is returned by [Writer] methods called after Close.
var ErrWriterClosed = errors.New("dsclient: writer closed")

// WriterOptions configures a [Writer]. Start from [DefaultWriterOptions]: a zero size or
// count is an error, not a default.
type WriterOptions struct {
	// ID identifies the writer across restarts (the protocol's Producer-Id). Required.
	ID string
	// Epoch is the starting epoch; bump it when the writer restarts. Must be >= 0.
	Epoch int64
	// AutoClaim, on a stale-epoch rejection, takes over the writer id with the server's
	// epoch + 1 and sends the rejected batches again. For ephemeral writers without a
	// stored epoch; it fences any other live writer with the same id.
	AutoClaim bool
	// MaxBatchBytes closes a batch when its body reaches this size. Must be > 0. An item
	// larger than this is sent alone. Default: 1 MiB.
	MaxBatchBytes int
	// MaxBatchItems closes a batch when it holds this many items. Must be > 0. Default: 10000.
	MaxBatchItems int
	// Linger is how long a batch waits for more items before it is sent. 0 sends as soon as
	// a request slot is free (items still accumulate while all slots are busy). Must be >= 0.
	// Default: 5ms.
	Linger time.Duration
	// MaxInFlight is how many batches may be in flight at once. Must be > 0. Default: 5.
	MaxInFlight int
	// MaxBufferedBytes bounds the bytes accepted but not yet acknowledged; beyond it
	// [Writer.Append] waits. Must be > 0. Default: 16 MiB.
	MaxBufferedBytes int
	// ContentType of the stream; application/json makes each appended item one JSON message.
	// Default: the handle's content type, else application/octet-stream.
	ContentType string
	// OnError is called (from a writer goroutine, once) when a batch fails for good; its
	// items are lost and the writer stops accepting appends. It must not call Close, which
	// waits for it. Default: none (the error is returned by the next Append, Flush or Close).
	OnError func(error)
}

// DefaultWriterOptions returns the defaults for the writer id.
func DefaultWriterOptions(id string) WriterOptions {
	return WriterOptions{ID: id, MaxBatchBytes: 1 << 20, MaxBatchItems: 10000,
		Linger: 5 * time.Millisecond, MaxInFlight: 5, MaxBufferedBytes: 16 << 20}
}

// Validate reports every invalid field at once, each named, wrapped in [ErrInvalidArgument].
func (o WriterOptions) Validate() error {
	var probs []string
	if o.ID == "" {
		probs = append(probs, "ID: must not be empty")
	}
	if o.Epoch < 0 {
		probs = append(probs, fmt.Sprintf("epoch: must be >= 0, got %d", o.Epoch))
	}
	if o.MaxBatchBytes <= 0 {
		probs = append(probs, fmt.Sprintf("maxBatchBytes: must be > 0, got %d", o.MaxBatchBytes))
	}
	if o.MaxBatchItems <= 0 {
		probs = append(probs, fmt.Sprintf("maxBatchItems: must be > 0, got %d", o.MaxBatchItems))
	}
	if o.Linger < 0 {
		probs = append(probs, fmt.Sprintf("linger: must be >= 0, got %s", o.Linger))
	}
	if o.MaxInFlight <= 0 {
		probs = append(probs, fmt.Sprintf("maxInFlight: must be > 0, got %d", o.MaxInFlight))
	}
	if o.MaxBufferedBytes <= 0 {
		probs = append(probs, fmt.Sprintf("maxBufferedBytes: must be > 0, got %d", o.MaxBufferedBytes))
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: WriterOptions: %s", ErrInvalidArgument, strings.Join(probs, "; "))
}

// Writer is the idempotent writer (the protocol's idempotent producer, section 5.2.1): it batches appends by size,
// count and linger time, keeps several batches in flight, and numbers each batch with the
// writer's (id, epoch, sequence) so that the server stores every batch exactly once, however
// often it is retried. Batches that race and arrive out of order (a sequence gap) are sent
// again once their predecessors are stored; a batch the server already had is counted as a
// duplicate, not an error.
//
// Append is fire-and-forget: it returns once the item is buffered. [Writer.Flush] waits for
// everything appended before it; [Writer.Close] flushes and stops. Methods are safe for
// concurrent use; items from one goroutine are stored in the order appended.
type Writer struct {
	s      *Stream
	o      WriterOptions
	json   bool
	ctype  string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every state change
	epoch      int64
	nextSeq    int64
	nextID     int64
	pending    *wbatch
	queue      []*wbatch // sealed, waiting to be sent, in sequence order
	unacked    []*wbatch // sealed and not yet stored, in sequence order
	inflight   int
	buffered   int
	claiming   bool
	claimEpoch int64
	timerGen   int64
	timer      *time.Timer
	err        error
	closed     bool
	final      *AppendResult
	stats      WriterStats
}

// WriterStats counts a writer's work.
type WriterStats struct {
	Batches    int64 // batches stored
	Items      int64 // items stored
	Bytes      int64 // body bytes stored
	Duplicates int64 // batches the server already had
}

type wbatch struct {
	id          int64
	body        []byte
	items       int
	epoch, seq  int64
	afterGap    bool // rejected with a sequence gap: send only when it is the oldest
	hadPred     bool // an older batch was unstored when this one was sent
	closeStream bool
	first       time.Time
	res         AppendResult
}

// NewWriter returns a writer appending to s. It validates opts (naming each bad field) and
// starts nothing until the first Append.
func NewWriter(s *Stream, opts WriterOptions) (*Writer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{s: s, o: opts, ctype: s.contentType(opts.ContentType), ctx: ctx, cancel: cancel,
		changed: make(chan struct{}), epoch: opts.Epoch}
	w.json = isJSONType(w.ctype)
	return w, nil
}

// Epoch returns the current epoch.
func (w *Writer) Epoch() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.epoch
}

// NextSeq returns the sequence number the next batch will get.
func (w *Writer) NextSeq() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nextSeq
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Append buffers data as one item (for a JSON stream, one JSON value: one message) and
// returns; the item is sent in a batch. When MaxBufferedBytes are already waiting, Append
// blocks until there is room or ctx ends. It fails, without buffering, on invalid JSON, after
// Close, and after a batch failed for good.
func (w *Writer) Append(ctx context.Context, data []byte) error {
	if w.json && !json.Valid(data) {
		return &Error{Op: OpAppend, URL: w.s.url, Kind: ErrInvalidArgument, Detail: "item is not valid JSON"}
	}
	if len(data) == 0 && !w.json {
		return &Error{Op: OpAppend, URL: w.s.url, Kind: ErrInvalidArgument, Detail: "empty item"}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if w.err != nil {
			return w.err
		}
		if w.closed {
			return ErrWriterClosed
		}
		if w.buffered == 0 || w.buffered+len(data) <= w.o.MaxBufferedBytes {
			break
		}
		if err := w.wait(ctx); err != nil {
			return err
		}
	}
	w.add(data)
	return nil
}

// AppendJSON encodes v and appends it as one item.
func (w *Writer) AppendJSON(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return &Error{Op: OpAppend, URL: w.s.url, Kind: ErrInvalidArgument, Err: err}
	}
	return w.Append(ctx, b)
}

// wait releases the lock until the state changes or ctx ends.
func (w *Writer) wait(ctx context.Context) error {
	ch := w.changed
	w.mu.Unlock()
	defer w.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) broadcast() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// add puts an item in the pending batch. Called with mu held.
func (w *Writer) add(data []byte) {
	b := w.pending
	if b != nil && (len(b.body)+len(data)+1 > w.o.MaxBatchBytes || b.items >= w.o.MaxBatchItems) {
		w.seal()
		b = nil
	}
	if b == nil {
		b = &wbatch{}
		if w.json {
			b.body = append(make([]byte, 0, min(w.o.MaxBatchBytes, 64<<10)), '[')
		}
		w.pending = b
		if w.o.Linger > 0 {
			w.timerGen++
			gen := w.timerGen
			w.timer = time.AfterFunc(w.o.Linger, func() { w.lingerDone(gen) })
		}
	}
	if w.json && b.items > 0 {
		b.body = append(b.body, ',')
	}
	b.body = append(b.body, data...)
	b.items++
	w.buffered += len(data)
	if len(b.body) >= w.o.MaxBatchBytes || b.items >= w.o.MaxBatchItems {
		w.seal()
	}
	w.pump()
}

func (w *Writer) lingerDone(gen int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if gen == w.timerGen && w.pending != nil {
		w.seal()
		w.pump()
	}
}

// seal closes the pending batch and queues it with the next sequence number.
func (w *Writer) seal() {
	b := w.pending
	if b == nil {
		return
	}
	w.pending = nil
	w.timerGen++
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if w.json {
		b.body = append(b.body, ']')
	}
	w.queueBatch(b)
}

func (w *Writer) queueBatch(b *wbatch) {
	b.id = w.nextID
	w.nextID++
	b.epoch, b.seq = w.epoch, w.nextSeq
	w.nextSeq++
	w.queue = append(w.queue, b)
	w.unacked = append(w.unacked, b)
}

// pump starts sends while the rules allow. Called with mu held.
func (w *Writer) pump() {
	if w.err != nil {
		return
	}
	if w.claiming {
		if w.inflight > 0 {
			return
		}
		// Every unstored batch is back in the queue: renumber them in the new epoch.
		w.claiming = false
		w.epoch = max(w.claimEpoch, w.epoch+1)
		w.nextSeq = 0
		for _, b := range w.unacked {
			b.epoch, b.seq, b.afterGap = w.epoch, w.nextSeq, false
			w.nextSeq++
		}
	}
	if w.o.Linger == 0 && w.pending != nil && len(w.queue) == 0 && w.inflight < w.o.MaxInFlight {
		w.seal()
	}
	for len(w.queue) > 0 && w.inflight < w.o.MaxInFlight {
		b := w.queue[0]
		// The first batch of an epoch establishes it: send it alone. A batch rejected for a
		// gap waits until it is the oldest unstored batch.
		if w.inflight > 0 && (b.seq == 0 || w.unacked[0].seq == 0 && w.unacked[0].epoch == b.epoch) {
			return
		}
		if b.afterGap && w.unacked[0] != b {
			return
		}
		w.queue = w.queue[1:]
		b.hadPred = w.unacked[0] != b
		w.inflight++
		w.wg.Add(1)
		go w.send(b)
	}
}

// send posts one batch and records the outcome.
func (w *Writer) send(b *wbatch) {
	defer w.wg.Done()
	if b.first.IsZero() {
		b.first = time.Now()
	}
	opts := AppendOptions{ContentType: w.ctype, Close: b.closeStream,
		Idempotent: &IdempotentHeaders{ID: w.o.ID, Epoch: b.epoch, Seq: b.seq}}
	res, err := w.s.Append(w.ctx, b.body, opts)
	w.mu.Lock()
	notify := w.record(b, res, err)
	w.mu.Unlock()
	if notify != nil && w.o.OnError != nil {
		w.o.OnError(notify) // outside the lock: the callback may use the writer (not Close)
	}
}

// record applies a send's outcome; it returns the error to report when the writer fails.
// Called with mu held.
func (w *Writer) record(b *wbatch, res AppendResult, err error) error {
	defer w.broadcast()
	w.inflight--
	var e *Error
	errors.As(err, &e)
	switch {
	case err == nil:
		b.res = res
		w.unacked = slices.DeleteFunc(w.unacked, func(x *wbatch) bool { return x == b })
		w.buffered -= b.bytes(w.json)
		w.stats.Batches++
		w.stats.Items += int64(b.items)
		w.stats.Bytes += int64(len(b.body))
		if res.Duplicate {
			w.stats.Duplicates++
		}
		if b.closeStream {
			w.final = &b.res
		}
		w.event(b, res.Duplicate, nil)
	case e != nil && e.Kind == ErrSequenceGap && b.hadPred:
		// A predecessor had not reached the server yet: send again once it is stored.
		b.afterGap = true
		w.requeue(b)
	case e != nil && e.Kind == ErrStaleEpoch && w.o.AutoClaim && w.ctx.Err() == nil:
		w.claiming = true
		w.claimEpoch = max(w.claimEpoch, e.Epoch+1)
		w.requeue(b)
	default:
		if w.ctx.Err() != nil && w.err == nil {
			err = &Error{Op: OpAppend, URL: w.s.url, Kind: ErrWriterClosed, Detail: "writer closed before the batch was stored", Err: err}
		}
		w.event(b, false, err)
		return w.failLocked(err)
	}
	w.pump()
	return nil
}

// bytes returns how many buffered bytes the batch accounts for.
func (b *wbatch) bytes(json bool) int {
	n := len(b.body)
	if json && n >= 2 {
		n -= 1 + b.items // brackets and commas
	}
	return max(n, 0)
}

func (w *Writer) requeue(b *wbatch) {
	i, _ := slices.BinarySearchFunc(w.queue, b, func(x, y *wbatch) int { return int(x.id - y.id) })
	w.queue = slices.Insert(w.queue, i, b)
}

func (w *Writer) event(b *wbatch, dup bool, err error) {
	if obs := w.s.cfg.observer; obs != nil {
		obs.WriterBatch(WriterBatchEvent{URL: w.s.url, WriterID: w.o.ID, Epoch: b.epoch, Seq: b.seq,
			Items: b.items, Bytes: len(b.body), Duration: time.Since(b.first), Duplicate: dup, Err: err})
	}
}

// failLocked stops the writer after a batch failed for good; it returns err the first time.
func (w *Writer) failLocked(err error) error {
	if w.err != nil {
		return nil
	}
	w.err = err
	w.queue = nil
	w.pending = nil
	return err
}

// Flush sends everything appended so far and waits until the server stored it, or ctx ends.
// It returns the error that stopped the writer, if any.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked(ctx)
}

func (w *Writer) flushLocked(ctx context.Context) error {
	w.seal()
	w.pump()
	target := w.nextID
	for {
		if w.err != nil {
			return w.err
		}
		if len(w.unacked) == 0 || w.unacked[0].id >= target {
			return nil
		}
		if err := w.wait(ctx); err != nil {
			return err
		}
	}
}

// Restart flushes, then starts a new epoch (epoch + 1, sequence 0), as a writer does after
// a restart.
func (w *Writer) Restart(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrWriterClosed
	}
	if err := w.flushLocked(ctx); err != nil {
		return err
	}
	w.epoch++
	w.nextSeq = 0
	return nil
}

// Close flushes and stops the writer; the stream stays open. If ctx ends first, unsent
// batches are abandoned and Close returns ctx's error. Close waits for the writer's
// goroutines and is safe to call more than once.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	var err error
	if !w.closed {
		err = w.flushLocked(ctx)
		w.closed = true
	}
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
	if err == nil {
		w.mu.Lock()
		err = w.err
		w.mu.Unlock()
		if errors.Is(err, ErrWriterClosed) {
			err = nil
		}
	}
	return err
}

// CloseStream flushes, appends final (may be nil) and closes the stream atomically, as the
// last batch of the writer, then stops the writer. It returns the stream's final offset.
// Calling it again returns the same result.
func (w *Writer) CloseStream(ctx context.Context, final []byte) (AppendResult, error) {
	if w.json && len(final) > 0 && !json.Valid(final) {
		return AppendResult{}, &Error{Op: OpClose, URL: w.s.url, Kind: ErrInvalidArgument, Detail: "final item is not valid JSON"}
	}
	w.mu.Lock()
	if w.final != nil {
		res := *w.final
		w.mu.Unlock()
		return res, nil
	}
	if w.closed {
		w.mu.Unlock()
		return AppendResult{}, ErrWriterClosed
	}
	if err := w.flushLocked(ctx); err != nil {
		w.mu.Unlock()
		return AppendResult{}, err
	}
	b := &wbatch{closeStream: true}
	if len(final) > 0 {
		b.items = 1
		if w.json {
			b.body = append(append([]byte{'['}, final...), ']')
		} else {
			b.body = final
		}
	}
	w.queueBatch(b)
	w.buffered += b.bytes(w.json)
	w.pump()
	err := w.flushLocked(ctx)
	w.closed = true
	var res AppendResult
	if w.final != nil {
		res = *w.final
	}
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
	return res, err
}
