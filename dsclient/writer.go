package dsclient

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrWriterClosed is returned by [Writer] methods called after Close.
var ErrWriterClosed = errors.New("dsclient: writer closed")

// ErrEpochInUse: the server answered a [Writer] batch as a duplicate although this writer never
// sent it before: another lifetime of the writer's ID (a process that ran before, or one that
// still runs) holds the same epoch, and the batch's data is not in the stream. With
// [EpochClaim] the writer moves to a new epoch and sends the batch again (the error is only
// seen by the [Observer] as a retry); with [EpochFixed] the writer fails with it.
var ErrEpochInUse = errors.New("dsclient: writer epoch already used by another writer with the same ID")

// Writer is the idempotent writer (the protocol's idempotent producer, section 5.2.1): it
// batches appends by size, count and linger time, keeps several batches in flight, and numbers
// each batch with the writer's (ID, epoch, sequence) so that the server stores every batch
// exactly once, however often it is retried. Batches that race and arrive out of order (a
// sequence gap) are sent again once their predecessors are stored.
//
// # Restarts
//
// A Writer is one lifetime of its ID. With the default [EpochClaim] a new Writer (in a
// restarted process, say) starts in a fresh epoch and claims the ID at its first batch, so
// that the server's state from an earlier lifetime never swallows its data, and any older
// lifetime still running is fenced; see [EpochPolicy]. A batch the server answers as a
// duplicate counts as stored only when an earlier attempt of this writer may have stored it
// (its response was lost); otherwise it is another lifetime's state and the batch is sent
// again in a new epoch ([EpochClaim]) or the writer fails with [ErrEpochInUse] ([EpochFixed]).
//
// # Failures
//
// Transient failures (network errors, 429, 5xx) are retried for as long as the writer lives,
// with the delays of the handle's [RetryPolicy] (exponential, capped at its MaxDelay,
// honouring Retry-After; its limit on attempts does not apply: the idempotent headers make
// every retry safe): a server that is down for minutes delays the writer, and loses nothing.
// Each retry is reported to the [Observer]'s Retry method. Other failures (the stream is
// missing or closed, the writer was fenced) fail the writer: the batch's items are lost,
// OnError is called, and later calls return the error. [Writer.Close] with a context that
// ends abandons what is not stored yet.
//
// # Use
//
// Append is fire-and-forget: it returns once the item is buffered. [Writer.Flush] waits for
// everything appended before it; [Writer.Close] flushes and stops. Methods are safe for
// concurrent use; items from one goroutine are stored in the order appended.
type Writer struct {
	s      *Stream
	once   *Stream // s without the client's retries: the writer retries each batch itself
	o      WriterOptions
	json   bool
	ctype  string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every state change
	epoch    int64
	owned    bool  // a batch was stored in epoch: the epoch is this writer's
	sentSeq  int64 // the highest sequence sent in epoch, -1 before the first
	nextSeq  int64
	nextID   int64
	pending  *wbatch
	queue    []*wbatch // sealed, waiting to be sent, in sequence order
	unacked  []*wbatch // sealed and not yet stored, in sequence order
	inflight int
	buffered int
	moving   bool  // a new epoch starts once nothing is in flight
	moveTo   int64 // the least epoch to move to
	timerGen int64
	timer    *time.Timer
	err      error
	closed   bool
	final    *AppendResult
	stats    WriterStats
}

// WriterStats counts a writer's work. A batch counts once, when it is stored, however many
// attempts it took.
type WriterStats struct {
	// Batches is the number of batches stored.
	Batches int64
	// Items is the number of items stored: each appended item once (a batch stored by an
	// attempt whose answer was lost, and confirmed as a duplicate by the retry, counts its
	// items once). Items of another lifetime's state never count.
	Items int64
	// Bytes is the number of body bytes stored.
	Bytes int64
	// Duplicates is the number of stored batches the server confirmed as duplicates: a
	// retry of a batch that an earlier attempt of this writer had stored. A close without a
	// final item is never a duplicate.
	Duplicates int64
}

type wbatch struct {
	id          int64
	body        []byte
	items       int
	epoch, seq  int64
	afterGap    bool // rejected with a sequence gap: send only when it is the oldest
	hadPred     bool // an older batch was unstored when this one was sent
	maybeStored bool // an attempt at (epoch, seq) got no answer: the server may have stored it
	closeStream bool
	attempts    int // attempts so far, in every epoch
	collisions  int // times the batch was answered as another writer's duplicate
	first       time.Time
	res         AppendResult
}

// closeOnly reports whether the batch closes the stream without appending.
func (b *wbatch) closeOnly() bool { return b.closeStream && len(b.body) == 0 }

// NewWriter returns a writer appending to s. It validates opts (naming each bad field, see
// [WriterOptions.Validate]), does no I/O and starts nothing until the first Append.
func NewWriter(s *Stream, opts WriterOptions) (*Writer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	o := opts.withDefaults()
	once := *s
	once.cfg.retry.MaxAttempts = 1 // single requests: the writer retries by itself
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{s: s, once: &once, o: o, ctype: s.contentType(o.ContentType), ctx: ctx, cancel: cancel,
		changed: make(chan struct{}), epoch: o.Epoch, sentSeq: -1}
	if o.EpochPolicy == EpochClaim {
		w.epoch = max(w.epoch, clockEpoch())
	}
	w.json = isJSONType(w.ctype)
	return w, nil
}

// clockEpoch is the epoch a claiming writer starts from: the clock in Unix milliseconds,
// which grows across process lifetimes and stays far below 2^53.
func clockEpoch() int64 {
	return min(max(time.Now().UnixMilli(), 0), maxProducerNumber)
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
	if w.moving {
		if w.inflight > 0 {
			return
		}
		w.startEpoch(max(w.moveTo, w.epoch+1))
	}
	for w.inflight < w.o.MaxInFlight {
		if len(w.queue) == 0 {
			if w.o.Linger > 0 || w.pending == nil || w.waitsForFirst(w.nextSeq) {
				return
			}
			w.seal() // no linger: the pending batch goes as soon as it can be sent
		}
		b := w.queue[0]
		if w.waitsForFirst(b.seq) {
			return
		}
		if b.afterGap && w.unacked[0] != b {
			return
		}
		w.queue = w.queue[1:]
		b.hadPred = w.unacked[0] != b
		w.sentSeq = max(w.sentSeq, b.seq)
		w.inflight++
		w.wg.Add(1)
		go w.send(b)
	}
}

// waitsForFirst reports whether the batch with sequence seq of the current epoch must wait
// for the epoch's first batch: that one establishes the epoch (or finds another lifetime's
// state) and is sent alone. Called with mu held.
func (w *Writer) waitsForFirst(seq int64) bool {
	return w.inflight > 0 && (seq == 0 || w.unacked[0].seq == 0 && w.unacked[0].epoch == w.epoch)
}

// startEpoch moves to epoch (nothing is in flight): every unstored batch is back in the queue
// and is numbered again from sequence 0. Called with mu held.
func (w *Writer) startEpoch(epoch int64) {
	w.moving, w.moveTo = false, 0
	w.epoch, w.nextSeq, w.sentSeq, w.owned = epoch, 0, -1, false
	for _, b := range w.unacked {
		b.epoch, b.seq = w.epoch, w.nextSeq
		b.afterGap, b.maybeStored = false, false
		w.nextSeq++
	}
}

// Flush sends everything appended so far and waits until the server stored it, or ctx ends.
// It returns the error that stopped the writer, if any. While the server is unreachable,
// Flush waits (the writer keeps retrying) until ctx ends.
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

// Restart flushes, then starts a new epoch at sequence 0, as a writer does after a restart:
// epoch + 1 (with [EpochClaim], the clock's epoch if that is larger). Items appended by other
// goroutines during the flush go into the new epoch.
func (w *Writer) Restart(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrWriterClosed
	}
	if err := w.flushLocked(ctx); err != nil {
		return err
	}
	next := w.epoch + 1
	if w.o.EpochPolicy == EpochClaim {
		next = max(next, clockEpoch())
	}
	if next > maxProducerNumber {
		return w.noEpochLeft()
	}
	// Batches appended meanwhile may be in flight: the new epoch starts once none is.
	w.moving, w.moveTo = true, max(w.moveTo, next)
	w.pump()
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
