package dsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
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

// ConsumerOptions configures a [Consumer].
type ConsumerOptions struct {
	// Offset to start from, typically a committed offset saved earlier. Default: [Beginning].
	Offset Offset
	// Live mode. Default: [LiveOff] (stop at the tail); a long-running consumer sets
	// [LiveLongPoll], [LiveAuto] or [LiveSSE].
	Live LiveMode
	// MaxBatchItems splits a JSON chunk into batches of at most this many items, so that a
	// large catch-up response is not handed over whole. Default: 0, one batch per chunk.
	MaxBatchItems int
	// MaxReconnects is how many consecutive failed reads (after the client's own retries)
	// the consumer survives, reconnecting with the client's backoff, before Run fails.
	// Default: 0, no limit.
	MaxReconnects int
	// MaxBytes is [ReadOptions.MaxBytes]. Default: 64 MiB.
	MaxBytes int
	// Handler handles each batch. Required.
	Handler ConsumerHandler
}

// Consumer is a long-running reader: it reads the stream in order, hands each chunk to a
// handler, and advances its committed offset only after the handler succeeded on the whole
// chunk — at-least-once delivery: after a crash, restarting from the committed offset may
// hand a batch again. Transient read failures reconnect with backoff from the last committed
// position.
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

// NewConsumer returns a consumer of s. It validates opts and starts nothing.
func NewConsumer(s *Stream, opts ConsumerOptions) (*Consumer, error) {
	if opts.Handler == nil {
		return nil, fmt.Errorf("%w: ConsumerOptions.Handler: required", ErrInvalidArgument)
	}
	if opts.MaxBatchItems < 0 || opts.MaxReconnects < 0 || opts.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: ConsumerOptions: MaxBatchItems, MaxReconnects and MaxBytes must be >= 0", ErrInvalidArgument)
	}
	if opts.Offset == "" {
		opts.Offset = Beginning
	}
	return &Consumer{s: s, o: opts, comm: opts.Offset}, nil
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
// error), or until the handler or a read fails for good (returning that error). It resumes
// from the committed offset, so Run may be called again after it returns; calls do not
// overlap.
func (c *Consumer) Run(ctx context.Context) error {
	c.runs.Lock()
	defer c.runs.Unlock()
	r := c.s.Reader(ctx, ReadOptions{Offset: c.Committed(), Live: c.o.Live, MaxBytes: c.o.MaxBytes})
	defer r.Close()
	bo := c.s.cfg.retry.Backoff()
	fails := 0
	for {
		ch, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var e *Error
			if !errors.As(err, &e) || !e.Temporary() {
				return err
			}
			fails++
			if c.o.MaxReconnects > 0 && fails > c.o.MaxReconnects {
				return err
			}
			d := bo.Next()
			if obs := c.s.cfg.observer; obs != nil {
				obs.Reconnect(ReconnectEvent{URL: c.s.url, Live: c.o.Live, Offset: r.Offset(), Err: err})
			}
			if err := sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		fails = 0
		bo.Reset()
		if err := c.handleChunk(ctx, ch); err != nil {
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
				if c.o.MaxBatchItems == 0 || len(items) < c.o.MaxBatchItems {
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

// call runs the handler, retrying batches it asks to retry.
func (c *Consumer) call(ctx context.Context, b ConsumerBatch) error {
	bo := c.s.cfg.retry.Backoff()
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
		if err := sleep(ctx, bo.Next()); err != nil {
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
