package dsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"
)

// ErrRetryBatch marks a handler error that asks the [Consumer] to call the handler again with
// the same batch (after a backoff) instead of stopping. Wrap it with [RetryBatch].
var ErrRetryBatch = errors.New("dsclient: retry batch")

// RetryBatch wraps err so that the [Consumer] retries the batch instead of stopping.
func RetryBatch(err error) error { return fmt.Errorf("%w: %w", ErrRetryBatch, err) }

// ConsumerBatch is what a [Consumer] hands its handler: the items of one chunk (or of part of it,
// with [ConsumerOptions.MaxBatchItems]), with the chunk's metadata.
type ConsumerBatch struct {
	// Items are the JSON items' raw bytes (JSON streams only). They are valid during the
	// handler call only.
	Items [][]byte
	// Data is the chunk's bytes (byte and text streams only), valid during the call only.
	Data []byte
	// Chunk is the metadata of the chunk the batch comes from.
	Chunk ChunkInfo
	// First is the index in the chunk of the batch's first item.
	First int
	// Last reports that the batch ends its chunk: once the handler returns nil, the
	// consumer commits Chunk.NextOffset.
	Last bool
}

// ConsumerHandler handles one batch. Returning nil commits the batch (at the end of its chunk);
// returning an error wrapped with [RetryBatch] hands the same batch again after a backoff;
// any other error stops the consumer, and [Consumer.Run] returns it, with the committed
// offset still at the start of the failed chunk.
type ConsumerHandler func(ctx context.Context, b ConsumerBatch) error

// ConsumerOptions configures a [Consumer]. Zero fields mean the documented defaults.
type ConsumerOptions struct {
	// Read configures the consumer's reads: where it starts (Read.Offset, typically a
	// committed offset saved earlier), its live mode (Read.Live: [LiveOff] stops at the
	// tail; a long-running consumer sets [LiveLongPoll], [LiveAuto] or [LiveSSE]), the size
	// limit, timeouts, and retries. A consumer is long-running: unless Read.Retry.MaxAttempts
	// says otherwise, it retries transient failures for as long as Run's context lives, with
	// the policy's backoff; the same policy paces handler retries ([RetryBatch]).
	// Default: the zero ReadOptions, with unlimited attempts.
	Read ReadOptions
	// MaxBatchItems splits a JSON chunk into batches of at most this many items, so that a
	// large catch-up response is not handed over whole. A batch also ends when its items
	// reach Read.MaxBytes, so that the consumer holds no more than that. Must be >= 0.
	// Default: 0, one batch per chunk (within Read.MaxBytes).
	MaxBatchItems int
	// Handler handles each batch. Required.
	Handler ConsumerHandler
}

// Validate reports every invalid field at once, each by its path
// (ConsumerOptions.Read.MaxBytes), in an [*OptionsError] that matches [ErrInvalidArgument].
func (o ConsumerOptions) Validate() error {
	c := optcheck.New("dsclient", ErrInvalidArgument)
	o.Read.check(c, "ConsumerOptions.Read.")
	if o.MaxBatchItems < 0 {
		c.Bad("ConsumerOptions.MaxBatchItems", "must be >= 0, got %d", o.MaxBatchItems)
	}
	if o.Handler == nil {
		c.Bad("ConsumerOptions.Handler", "required")
	}
	return c.Err()
}

// Consumer is a long-running reader: it reads the stream in order, hands each chunk to a
// handler, and advances its committed offset only after the handler succeeded on the whole
// chunk — at-least-once delivery: after a crash, restarting from the committed offset may
// hand a batch again. Its reads retry transient failures by themselves (see [ChunkReader]),
// resuming where they stood.
//
// Committed and InFlight are safe to call from any goroutine while Run runs.
type Consumer struct {
	s    *Stream
	o    ConsumerOptions
	mu   sync.Mutex
	comm Offset
	infl Offset
	runs sync.Mutex
}

// NewConsumer returns a consumer of s. It validates opts, reporting every bad field in an
// [*OptionsError], and starts nothing.
func NewConsumer(s *Stream, opts ConsumerOptions) (*Consumer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Read.Offset == "" {
		opts.Read.Offset = Beginning
	}
	if opts.Read.Retry.MaxAttempts == 0 {
		opts.Read.Retry.MaxAttempts = UnlimitedAttempts
	}
	if opts.Read.MaxBytes == 0 {
		opts.Read.MaxBytes = DefaultMaxBytes
	}
	return &Consumer{s: s, o: opts, comm: opts.Read.Offset}, nil
}

// Committed returns the offset after the last chunk the handler finished: where a restart
// should resume. Persist it to checkpoint.
func (c *Consumer) Committed() Offset {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.comm
}

// InFlight returns the offset that will be committed when the chunk being handled is done,
// or "" when no chunk is being handled.
func (c *Consumer) InFlight() Offset {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.infl
}

// Run consumes until the end of input (returning nil), until ctx ends (returning ctx's
// error), or until the handler or a read fails for good (returning that error: a read
// error retrying cannot fix, such as [ErrNotFound], or the last failure once a bounded
// Read.Retry is exhausted). It resumes from the committed offset, so Run may be called
// again after it returns; calls do not overlap.
func (c *Consumer) Run(ctx context.Context) error {
	c.runs.Lock()
	defer c.runs.Unlock()
	ro := c.o.Read
	ro.Offset = c.Committed()
	r := c.s.Reader(ctx, ro)
	defer r.Close()
	for {
		ch, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if err := c.handleChunk(ctx, ch); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// handleChunk hands one chunk to the handler in batches and commits it.
func (c *Consumer) handleChunk(ctx context.Context, ch *Chunk) error {
	c.mu.Lock()
	c.infl = ch.info.NextOffset
	c.mu.Unlock()
	if !ch.IsJSON() {
		data, err := ch.ReadAll()
		if err != nil {
			return err
		}
		if len(data) > 0 {
			if err := c.call(ctx, ConsumerBatch{Data: data, Chunk: ch.info, Last: true}); err != nil {
				return err
			}
		}
	} else {
		var items [][]byte
		var arena []byte
		first := ch.Index()
		for {
			item, err := ch.NextItem()
			if err != nil && err != io.EOF {
				return err
			}
			if err == nil {
				// Items are valid only until the next read: copy them into one arena.
				off := len(arena)
				arena = append(arena, item...)
				items = append(items, arena[off:len(arena):len(arena)])
				if (c.o.MaxBatchItems == 0 || len(items) < c.o.MaxBatchItems) && len(arena) < c.o.Read.MaxBytes {
					continue
				}
			}
			last := err == io.EOF
			if len(items) > 0 {
				if err := c.call(ctx, ConsumerBatch{Items: fixArena(items, arena), Chunk: ch.info, First: first, Last: last}); err != nil {
					return err
				}
			}
			if last {
				break
			}
			first += len(items)
			items, arena = items[:0], arena[:0]
		}
	}
	c.mu.Lock()
	c.comm = ch.info.NextOffset
	c.infl = ""
	c.mu.Unlock()
	return nil
}

// fixArena re-slices items onto the final arena (appends may have moved it).
func fixArena(items [][]byte, arena []byte) [][]byte {
	off := 0
	for i, it := range items {
		n := len(it)
		items[i] = arena[off : off+n : off+n]
		off += n
	}
	return items
}

// call runs the handler, retrying batches it asks to retry with the read's backoff.
func (c *Consumer) call(ctx context.Context, b ConsumerBatch) error {
	bo := c.o.Read.Retry.over(c.s.cfg.retry.policy()).Backoff()
	for {
		start := time.Now()
		err := c.safeHandle(ctx, b)
		if obs := c.s.cfg.observer; obs != nil {
			obs.ConsumerBatch(ConsumerBatchEvent{URL: c.s.url, Info: b.Chunk, Items: len(b.Items), Bytes: len(b.Data), Duration: time.Since(start), Err: err})
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrRetryBatch) {
			return err
		}
		d := bo.Next() // counts this call
		if bo.Exhausted() {
			return err
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// safeHandle calls the handler, turning a panic into an error.
func (c *Consumer) safeHandle(ctx context.Context, b ConsumerBatch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("dsclient: consumer handler panicked: %v", p)
		}
	}()
	return c.o.Handler(ctx, b)
}
