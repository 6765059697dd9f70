package durablestreams

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/optcheck"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// CommitMode says when a [Producer] counts a message as done for its committed offset.
type CommitMode int

const (
	// CommitOnAck advances the committed offset past a chunk only once every message of it
	// has been acknowledged (successfully, or failed and handled by the failure policy):
	// at-least-once delivery. A crash re-delivers the chunks that were not fully finished.
	CommitOnAck CommitMode = iota
	// CommitOnReceive advances the committed offset past a chunk as soon as the chunk is
	// received, and saves it to the checkpoint store before any of its messages is handed
	// to the pipeline: at-most-once delivery. A crash or a stop loses what was received
	// but not finished; nothing is ever delivered twice.
	CommitOnReceive
)

// String returns "on-ack" or "on-receive".
func (m CommitMode) String() string {
	switch m {
	case CommitOnAck:
		return "on-ack"
	case CommitOnReceive:
		return "on-receive"
	}
	return fmt.Sprintf("CommitMode(%d)", int(m))
}

// GonePolicy says what a [Producer] does when the server answers 410 Gone: the offset it
// reads from is no longer retained.
type GonePolicy int

const (
	// GoneFail ends the run with the *[Error] (matching [ErrGone]).
	GoneFail GonePolicy = iota
	// GoneResumeEarliest logs a warning, reports [ProducerObserver.Gone], and resumes from
	// the earliest offset the server reports (from the beginning when it reports none).
	// The messages between the two offsets are lost.
	GoneResumeEarliest
)

// NotFoundPolicy says what a [Producer] does when the stream does not exist (404).
type NotFoundPolicy int

const (
	// NotFoundFail ends the run with the *[Error] (matching [ErrNotFound]).
	NotFoundFail NotFoundPolicy = iota
	// NotFoundWait keeps trying, with the client's backoff, until the stream exists or the
	// run ends: for a pipeline started before its stream is created.
	NotFoundWait
)

// ProducerOptions configures a [Producer]. Only Stream is required.
type ProducerOptions[T any] struct {
	// Stream is the stream to read. Required.
	Stream *dsclient.Stream
	// Name is the pipeline's name, part of the checkpoint key. Required with Checkpoints
	// unless CheckpointKey is set. Default: "".
	Name string
	// Offset is where reading starts when the checkpoint store has no offset saved (or
	// there is no store): [Beginning], [Now] or an offset token. Default: [Beginning].
	Offset dsclient.Offset
	// Live selects what happens at the stream's tail: [LiveOff] drains the pipeline and
	// ends the run once the stream is read up to date; [LiveLongPoll], [LiveAuto] and
	// [LiveSSE] follow the stream until the run is stopped. A closed stream ends the run in
	// every mode. Default: LiveOff.
	Live dsclient.LiveMode
	// Commit is the commit mode. Default: [CommitOnAck].
	Commit CommitMode
	// Checkpoints saves the committed offset, and gives the start offset of the next run.
	// Default: none (the committed offset is only available from [Producer.Committed]).
	Checkpoints ack.CheckpointStore
	// CheckpointKey is the key under which Checkpoints keeps the offset. Default:
	// ack.CheckpointKey(Name, Stream.URL()).
	CheckpointKey string
	// CheckpointInterval is the least time between two saves of an advancing committed
	// offset (a drain always saves the last one). Default: 1s.
	CheckpointInterval time.Duration
	// MaxPending caps the messages fetched but not yet finished (with CommitOnAck): reading
	// pauses, in the middle of a response if need be, while the cap is reached. Default:
	// 10000.
	MaxPending int
	// MaxBytes is [ReadOptions.MaxBytes]: the largest item, SSE batch or byte chunk held
	// in memory. Default: 64 MiB.
	MaxBytes int
	// Decode turns one item into the message data: for a JSON stream, one JSON value of
	// the stream's array; for a byte or text stream, one chunk, or one token of Split.
	// data is valid only during the call (copy what must outlive it). An error makes the
	// message a failed message carrying a *[DecodeError]; the stream goes on. Default:
	// for a JSON stream, decoding with encoding/json into T (as raw bytes when T is []byte
	// or json.RawMessage); for a byte or text stream, the bytes when T is []byte and the
	// text when T is string (any other T needs a Decode).
	Decode func(data []byte, dst *T) error
	// Split cuts the bytes of a byte or text stream's chunk into messages, as a
	// bufio.Scanner would (bufio.ScanLines gives one message per line). Not used for JSON
	// streams. Default: nil, one message per chunk.
	Split bufio.SplitFunc
	// OnGone is the policy for 410 Gone. Default: [GoneFail].
	OnGone GonePolicy
	// OnNotFound is the policy for 404 Not Found. Default: [NotFoundFail].
	OnNotFound NotFoundPolicy
	// Observer receives the producer's events. Default: none.
	Observer ProducerObserver
	// Logger logs warnings (read failures that will be retried, 410 resumes, failed
	// checkpoint saves). Default: slog.Default().
	Logger *slog.Logger
}

const (
	defaultMaxPending         = 10000
	defaultCheckpointInterval = time.Second
)

// ChunkMeta describes the chunk a message came from. A [Producer] stores a *ChunkMeta in
// each message's Metadata.Chunk, shared by the messages of one chunk; read it with
// [ChunkMetaOf]. It must not be modified.
type ChunkMeta struct {
	// URL is the stream's URL.
	URL string
	// Start is the offset the chunk was read from.
	Start dsclient.Offset
	// Next is the offset after the chunk, as known when the message was read.
	Next dsclient.Offset
	// Cursor is the server's cursor for the chunk, if any.
	Cursor string
	// UpToDate reports that the chunk reached the stream's tail.
	UpToDate bool
	// Closed reports that the chunk is the last of a closed stream.
	Closed bool
}

// ChunkMetaOf returns the chunk metadata a [Producer] attached to a message, or nil when the
// message did not come from a Producer.
func ChunkMetaOf(md pipeline.Metadata) *ChunkMeta {
	cm, _ := md.Source.(*ChunkMeta)
	return cm
}

// DecodeError is the error of a message whose item could not be decoded into the
// pipeline's data type. The message is failed, not dropped: the failure policy and the
// failure handler see it.
type DecodeError struct {
	// URL is the stream's URL.
	URL string
	// ChunkStart is the offset of the item's chunk, and Index its position in the chunk.
	ChunkStart dsclient.Offset
	Index      int
	// Err is the decoder's error.
	Err error
	// Raw is the item's bytes, when the decoder that failed was [ProducerOptions.Decode]
	// (the default JSON decoder streams and keeps none). Default: nil.
	Raw []byte
}

// Error names the stream, the item's position and the decoder's error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("durablestreams: decode item %d of chunk at offset %s of %s: %v", e.Index, e.ChunkStart, e.URL, e.Err)
}

// Unwrap returns the decoder's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// ProducerStats is a snapshot of a [Producer]'s progress.
type ProducerStats struct {
	// Committed is the committed offset.
	Committed dsclient.Offset
	// ReadOffset is where reading stands: the start of the chunk being read, or the offset
	// after the last chunk read.
	ReadOffset dsclient.Offset
	// Pending is the number of messages fetched and not yet finished (CommitOnAck).
	Pending int
	// AtTail reports whether the last chunk read reached the stream's tail.
	AtTail bool
	// OldestPending is the age of the oldest chunk not yet committed, or 0 if every chunk
	// read is committed.
	OldestPending time.Duration
	// Chunks, Messages and DecodeFailures count the chunks read and the messages handed to
	// the pipeline (failed decodes included) since the producer started.
	Chunks, Messages, DecodeFailures uint64
}

// Producer is a [pipeline.Producer] that reads a durable stream on demand and commits its
// offset as the pipeline acknowledges messages.
//
// Each chunk the reader returns (one response, or one SSE batch) is tracked by an
// [ack.Tracker] with the offset after it; the committed offset is the offset after the
// longest prefix of chunks whose every message has been acknowledged, and is saved to the
// checkpoint store as it advances and at the end of the run. Items are decoded one by one
// as the response streams in: the producer reads only when the pipeline asks, so a paused
// pipeline pauses the response body, and no more than MaxPending messages are ever fetched
// and unfinished.
//
// A Producer serves one pipeline run: it starts (loads its checkpoint, starts saving) on
// the first Produce and stops on Close. It implements [pipeline.Producer],
// [pipeline.DrainNotifier] and [pipeline.Closer]. Its methods are safe for concurrent use.
type Producer[T any] struct {
	opts   ProducerOptions[T]
	key    string
	log    *slog.Logger
	obs    ProducerObserver
	rawDst bool // T is []byte: JSON items as raw bytes

	readCtx    context.Context
	readCancel context.CancelFunc

	mu        sync.Mutex // held by Produce and Close
	started   bool
	closed    bool
	ended     bool
	tracker   *ack.Tracker[dsclient.Offset]
	saver     *ack.Saver[dsclient.Offset]
	saverStop context.CancelFunc
	saverDone chan struct{}
	reader    *dsclient.ChunkReader
	backoff   *dsclient.Backoff

	cur         *dsclient.Chunk // the chunk being emitted, or nil
	cont        bool            // cur failed mid-body: the reader's next chunk continues it
	tc          *ack.Chunk[dsclient.Offset]
	meta        *ChunkMeta
	start       string // cur's start offset, shared by its messages
	chunkMsgs   int
	chunkFail   int
	pieces      [][]byte        // byte streams: the chunk's messages not emitted yet
	piece       int             // index in the chunk of pieces[0]
	pendingNext dsclient.Offset // byte streams: the offset after the chunk being emitted
	ctype       string          // the content type of the last chunk
	path        string
	ordinal     int64

	statsMu  sync.Mutex
	fifo     []pendingChunk
	atTail   atomic.Bool
	chunks   atomic.Uint64
	messages atomic.Uint64
	decodeKO atomic.Uint64
}

type pendingChunk struct {
	next   dsclient.Offset // "" while the chunk is open
	opened time.Time
	tc     *ack.Chunk[dsclient.Offset]
}

var (
	_ pipeline.Producer[int] = (*Producer[int])(nil)
	_ pipeline.DrainNotifier = (*Producer[int])(nil)
	_ pipeline.Closer        = (*Producer[int])(nil)
)

// NewProducer validates opts and returns a producer. It does no I/O: the checkpoint is
// loaded and the first request sent by the first Produce. Invalid options are reported
// all at once in a *[pipeline.OptionsError], each problem naming its field.
func NewProducer[T any](opts ProducerOptions[T]) (*Producer[T], error) {
	var probs []pipeline.FieldError
	bad := func(field, problem string) {
		probs = append(probs, pipeline.FieldError{Field: "ProducerOptions." + field, Problem: problem})
	}
	if opts.Stream == nil {
		bad("Stream", "required")
	}
	if opts.Live < dsclient.LiveOff || opts.Live > dsclient.LiveSSE {
		bad("Live", fmt.Sprintf("unknown live mode %d", int(opts.Live)))
	}
	if opts.Commit != CommitOnAck && opts.Commit != CommitOnReceive {
		bad("Commit", fmt.Sprintf("unknown commit mode %d", int(opts.Commit)))
	}
	if opts.OnGone != GoneFail && opts.OnGone != GoneResumeEarliest {
		bad("OnGone", fmt.Sprintf("unknown policy %d", int(opts.OnGone)))
	}
	if opts.OnNotFound != NotFoundFail && opts.OnNotFound != NotFoundWait {
		bad("OnNotFound", fmt.Sprintf("unknown policy %d", int(opts.OnNotFound)))
	}
	if opts.MaxPending < 0 {
		bad("MaxPending", fmt.Sprintf("must be >= 0, got %d", opts.MaxPending))
	}
	if opts.MaxBytes < 0 {
		bad("MaxBytes", fmt.Sprintf("must be >= 0, got %d", opts.MaxBytes))
	}
	if opts.CheckpointInterval < 0 {
		bad("CheckpointInterval", fmt.Sprintf("must be >= 0, got %v", opts.CheckpointInterval))
	}
	if opts.Checkpoints != nil && opts.Name == "" && opts.CheckpointKey == "" {
		bad("Name", "required with Checkpoints (or set CheckpointKey)")
	}
	if len(probs) > 0 {
		return nil, optcheck.Of("durablestreams", nil, probs)
	}
	if opts.Offset == "" {
		opts.Offset = dsclient.Beginning
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = defaultMaxPending
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = defaultCheckpointInterval
	}
	p := &Producer[T]{opts: opts, log: opts.Logger, obs: opts.Observer}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.obs == nil {
		p.obs = NopProducerObserver{}
	}
	p.key = opts.CheckpointKey
	if p.key == "" {
		p.key = ack.CheckpointKey(opts.Name, opts.Stream.URL())
	}
	var zero T
	_, p.rawDst = any(&zero).(*[]byte)
	if u, err := url.Parse(opts.Stream.URL()); err == nil {
		p.path = u.Path
	}
	p.readCtx, p.readCancel = context.WithCancel(context.Background())
	p.backoff = opts.Stream.RetryPolicy().Backoff()
	return p, nil
}

// Key returns the checkpoint key the producer saves its offset under.
func (p *Producer[T]) Key() string { return p.key }

// Committed returns the committed offset: where a restart resumes. Before the first Produce
// it is the configured start offset. Safe for concurrent use.
func (p *Producer[T]) Committed() dsclient.Offset {
	p.statsMu.Lock()
	t := p.tracker
	p.statsMu.Unlock()
	if t == nil {
		return p.opts.Offset
	}
	return t.Committed()
}

// Stats returns a snapshot of the producer's progress. Safe for concurrent use; it does not
// block on a running Produce.
func (p *Producer[T]) Stats() ProducerStats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	st := ProducerStats{
		Committed:      p.opts.Offset,
		ReadOffset:     p.opts.Offset,
		AtTail:         p.atTail.Load(),
		Chunks:         p.chunks.Load(),
		Messages:       p.messages.Load(),
		DecodeFailures: p.decodeKO.Load(),
	}
	if p.tracker != nil {
		st.Committed = p.tracker.Committed()
		st.Pending = p.tracker.Pending()
		p.pruneLocked(st.Committed)
		if len(p.fifo) > 0 {
			st.OldestPending = time.Since(p.fifo[0].opened)
		}
	}
	if n := len(p.fifo); n > 0 {
		st.ReadOffset = p.fifo[n-1].next
		if st.ReadOffset == "" {
			st.ReadOffset = dsclient.Offset(p.start)
		}
	} else {
		st.ReadOffset = st.Committed
	}
	return st
}

// pruneLocked drops the chunks that are committed from the head of the fifo: those up to the
// last one whose next offset is the committed offset.
func (p *Producer[T]) pruneLocked(committed dsclient.Offset) {
	last := -1
	for i := range p.fifo {
		if p.fifo[i].next == committed {
			last = i
		}
	}
	if last >= 0 {
		n := copy(p.fifo, p.fifo[last+1:])
		clear(p.fifo[n:])
		p.fifo = p.fifo[:n]
	}
}

// PrepareForDraining cancels a read in progress, so that draining does not wait for a live
// read to return. It does not block.
func (p *Producer[T]) PrepareForDraining() { p.readCancel() }

// startup loads the checkpoint and starts the reader and the saver. Called with p.mu held.
func (p *Producer[T]) startup(ctx context.Context) error {
	p.started = true
	offset := p.opts.Offset
	if p.opts.Checkpoints != nil {
		saved, found, err := p.opts.Checkpoints.Load(ctx, p.key)
		if err != nil {
			return fmt.Errorf("durablestreams: load checkpoint %q: %w", p.key, err)
		}
		if found && saved != "" {
			offset = dsclient.Offset(saved)
		}
	}
	tr := ack.NewTracker(offset, ack.TrackerOptions{MaxPending: p.opts.MaxPending})
	p.statsMu.Lock()
	p.tracker = tr
	p.start = string(offset)
	p.statsMu.Unlock()
	p.reader = p.opts.Stream.Reader(p.readCtx, dsclient.ReadOptions{Offset: offset, Live: p.opts.Live, MaxBytes: p.opts.MaxBytes})

	store := p.opts.Checkpoints
	if store == nil {
		store = discardStore{}
	}
	store = &observedStore{CheckpointStore: store, url: p.opts.Stream.URL(), obs: p.obs, real: p.opts.Checkpoints != nil}
	p.saver = ack.NewSaver(tr, store, p.key, ack.SaverOptions[dsclient.Offset]{
		Interval: p.opts.CheckpointInterval,
		Encode:   func(o dsclient.Offset) string { return string(o) },
		OnError: func(err error) {
			p.log.Warn("durablestreams: checkpoint save failed; will retry", "key", p.key, "err", err)
		},
	})
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.saverStop = stop
	p.saverDone = make(chan struct{})
	go func() {
		defer close(p.saverDone)
		p.saver.Run(sctx)
	}()
	return nil
}

// Produce fills msgs with the next messages of the stream, reading only what it hands out.
// It blocks until it has at least one message, the run ends or the input ends; it returns
// [pipeline.ErrEndOfInput] once the stream is read up to date (LiveOff) or closed, the
// *[Error] of a read that cannot go on (see OnGone and OnNotFound), and ctx's error when
// ctx ends. Transient failures are retried with backoff, indefinitely, resuming where the
// read stood, so that nothing is skipped or repeated.
func (p *Producer[T]) Produce(ctx context.Context, msgs []pipeline.Message[T]) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errors.New("durablestreams: producer is closed")
	}
	if !p.started {
		if err := p.startup(ctx); err != nil {
			return 0, err
		}
	}
	if p.ended {
		return 0, pipeline.ErrEndOfInput
	}
	stop := context.AfterFunc(ctx, p.readCancel)
	defer stop()

	n := 0
	for n < len(msgs) {
		if p.cur == nil && len(p.pieces) == 0 {
			if n > 0 {
				return n, nil // hand over what we have before waiting for more
			}
			c, err := p.reader.Next()
			if err != nil {
				if err := p.readFailed(ctx, err); err != nil {
					return n, err
				}
				continue
			}
			if err := p.begin(ctx, c); err != nil {
				return n, err
			}
			continue
		}
		k, err := p.fill(ctx, msgs[n:])
		n += k
		if err != nil {
			if n > 0 && ctx.Err() == nil && isTemporary(err) {
				return n, nil // the next call retries
			}
			if err := p.readFailed(ctx, err); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// readFailed decides what a read error means: nil to try again (after a backoff, or after
// resuming from the earliest offset), or the error that ends Produce.
func (p *Producer[T]) readFailed(ctx context.Context, err error) error {
	if err == io.EOF { // the end of input itself, not a network error wrapping it
		p.ended = true
		return pipeline.ErrEndOfInput
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if p.readCtx.Err() != nil {
		return context.Canceled
	}
	var e *dsclient.Error
	errors.As(err, &e)
	switch {
	case errors.Is(err, dsclient.ErrGone) && p.opts.OnGone == GoneResumeEarliest:
		return p.resumeEarliest(ctx, e)
	case errors.Is(err, dsclient.ErrNotFound) && p.opts.OnNotFound == NotFoundWait:
	case e != nil && e.Temporary():
	default:
		return err
	}
	d := p.backoff.Next()
	p.log.Warn("durablestreams: read failed; retrying", "url", p.opts.Stream.URL(), "offset", p.reader.Offset(), "in", d, "err", err)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.readCtx.Done():
		return context.Canceled
	}
}

func isTemporary(err error) bool {
	var e *dsclient.Error
	return errors.As(err, &e) && e.Temporary()
}

// resumeEarliest restarts the read at the earliest retained offset after a 410.
func (p *Producer[T]) resumeEarliest(ctx context.Context, e *dsclient.Error) error {
	from := p.reader.Offset()
	to := dsclient.Beginning
	if e != nil && e.EarliestOffset != "" {
		to = e.EarliestOffset
	}
	p.log.Warn("durablestreams: offset no longer retained; resuming from the earliest offset, skipping what lies between",
		"url", p.opts.Stream.URL(), "from", from, "resume_at", to)
	p.obs.Gone(GoneEvent{URL: p.opts.Stream.URL(), From: from, ResumeAt: to})
	if p.cur != nil || p.cont {
		// The chunk being read is gone too: what was emitted of it stays tracked; seal it
		// where the read resumes.
		p.cur, p.cont = nil, false
		p.endChunk(to)
	}
	if to != dsclient.Beginning {
		if _, err := p.tracker.Track(ctx, 0, to); err != nil {
			return err
		}
	}
	p.reader.Close()
	p.reader = p.opts.Stream.Reader(p.readCtx, dsclient.ReadOptions{Offset: to, Live: p.opts.Live, MaxBytes: p.opts.MaxBytes})
	return nil
}

// begin takes c as the chunk to emit: a new tracked chunk, or the continuation of the one
// whose body failed.
func (p *Producer[T]) begin(ctx context.Context, c *dsclient.Chunk) error {
	p.backoff.Reset()
	info := c.Info()
	p.cur = c
	p.meta = &ChunkMeta{URL: p.opts.Stream.URL(), Start: info.StartOffset, Next: info.NextOffset,
		Cursor: info.Cursor, UpToDate: info.UpToDate, Closed: info.Closed}
	if p.cont {
		p.cont = false
		return nil
	}
	p.statsMu.Lock() // Stats reads start
	p.start = string(info.StartOffset)
	p.statsMu.Unlock()
	p.chunkMsgs, p.chunkFail = 0, 0
	p.chunks.Add(1)
	if p.opts.Commit == CommitOnReceive {
		// At most once: the chunk counts as done before any of its messages is emitted,
		// and its offset is saved before they are.
		p.tc = nil
		if _, err := p.tracker.Track(ctx, 0, info.NextOffset); err != nil {
			return err
		}
		if p.opts.Checkpoints != nil {
			if err := p.saver.Flush(ctx); err != nil {
				return fmt.Errorf("durablestreams: save checkpoint before delivery: %w", err)
			}
		}
	} else {
		p.tc = p.tracker.Open()
		p.statsMu.Lock()
		p.fifo = append(p.fifo, pendingChunk{opened: time.Now(), tc: p.tc})
		p.statsMu.Unlock()
	}
	p.ctype = info.ContentType
	if !c.IsJSON() {
		return p.split(c)
	}
	return nil
}

// split reads a byte or text chunk whole and cuts it into the pieces to emit.
func (p *Producer[T]) split(c *dsclient.Chunk) error {
	data, err := c.ReadAll()
	if err != nil {
		return err
	}
	p.cur = nil
	p.piece = 0
	p.pieces = p.pieces[:0]
	if p.opts.Split == nil {
		if len(data) > 0 {
			p.pieces = append(p.pieces, data)
		}
	} else {
		for len(data) > 0 {
			adv, tok, err := p.opts.Split(data, true)
			if err != nil {
				if errors.Is(err, bufio.ErrFinalToken) {
					if tok != nil {
						p.pieces = append(p.pieces, tok)
					}
					break
				}
				return fmt.Errorf("durablestreams: split chunk at offset %s: %w", c.StartOffset(), err)
			}
			if adv <= 0 || adv > len(data) {
				if adv == 0 && tok == nil {
					break // the split function wants more data than the chunk has: the rest is dropped
				}
				return fmt.Errorf("durablestreams: split chunk at offset %s: split function advanced %d of %d bytes", c.StartOffset(), adv, len(data))
			}
			if tok != nil {
				p.pieces = append(p.pieces, tok)
			}
			data = data[adv:]
		}
	}
	p.pendingNext = c.NextOffset()
	if len(p.pieces) == 0 {
		p.endChunk(p.pendingNext)
	}
	return nil
}

// fill emits up to len(dst) messages of the current chunk. At the end of the chunk it seals
// it. An error other than a decode failure is returned with the messages filled before it.
func (p *Producer[T]) fill(ctx context.Context, dst []pipeline.Message[T]) (int, error) {
	if len(p.pieces) > 0 {
		return p.fillPieces(ctx, dst)
	}
	want := min(len(dst), p.opts.MaxPending)
	if p.tc != nil {
		// Count the messages as pending before reading them, so that the cap holds for
		// what is read; the ones the chunk turns out not to have are marked done at once.
		if err := p.tc.Add(ctx, want); err != nil {
			return 0, err
		}
	}
	c := p.cur
	i := 0
	var rerr error
	for i < want {
		m := &dst[i]
		idx := c.Index()
		var err error
		if p.opts.Decode != nil || p.rawDst {
			var raw []byte
			raw, err = c.NextItem()
			if err == nil {
				if p.opts.Decode != nil {
					err = p.opts.Decode(raw, &m.Data)
				} else {
					*any(&m.Data).(*[]byte) = append([]byte(nil), raw...)
				}
				if err != nil {
					err = &DecodeError{URL: p.meta.URL, ChunkStart: dsclient.Offset(p.start), Index: idx, Err: err, Raw: append([]byte(nil), raw...)}
				}
			}
		} else {
			err = c.DecodeItem(&m.Data)
			if err != nil && errors.Is(err, dsclient.ErrParse) {
				err = &DecodeError{URL: p.meta.URL, ChunkStart: dsclient.Offset(p.start), Index: idx, Err: err}
			}
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				rerr = err
				break
			}
			m.Fail(err)
			p.chunkFail++
			p.decodeKO.Add(1)
		}
		p.stamp(m, idx, c.NextOffset())
		i++
	}
	if p.tc != nil && i < want {
		p.tc.Done(want - i)
	}
	p.chunkMsgs += i
	p.messages.Add(uint64(i))
	if rerr == nil {
		return i, nil
	}
	if rerr == io.EOF {
		p.cur = nil
		p.endChunk(c.NextOffset())
		return i, nil
	}
	// The body failed: the reader's next chunk continues this one.
	p.cur = nil
	p.cont = true
	return i, rerr
}

// fillPieces emits the pieces of a byte or text chunk.
func (p *Producer[T]) fillPieces(ctx context.Context, dst []pipeline.Message[T]) (int, error) {
	k := min(len(dst), len(p.pieces), p.opts.MaxPending)
	if p.tc != nil {
		if err := p.tc.Add(ctx, k); err != nil {
			return 0, err
		}
	}
	for i := range k {
		m := &dst[i]
		data := p.pieces[i]
		var err error
		switch {
		case p.opts.Decode != nil:
			err = p.opts.Decode(data, &m.Data)
		case p.rawDst:
			*any(&m.Data).(*[]byte) = data
		default:
			if sp, ok := any(&m.Data).(*string); ok {
				*sp = string(data)
			} else {
				var zero T
				err = fmt.Errorf("stream content type is %q, not JSON: ProducerOptions.Decode is needed to make a %T of its bytes", p.ctype, zero)
			}
		}
		if err != nil {
			m.Fail(&DecodeError{URL: p.meta.URL, ChunkStart: dsclient.Offset(p.start), Index: p.piece, Err: err, Raw: data})
			p.chunkFail++
			p.decodeKO.Add(1)
		}
		p.stamp(m, p.piece, p.pendingNext)
		p.piece++
	}
	clear(p.pieces[:k])
	p.pieces = p.pieces[k:]
	p.chunkMsgs += k
	p.messages.Add(uint64(k))
	if len(p.pieces) == 0 {
		p.pieces = nil
		p.endChunk(p.pendingNext)
	}
	return k, nil
}

// stamp sets a message's metadata and acknowledger.
func (p *Producer[T]) stamp(m *pipeline.Message[T], idx int, next dsclient.Offset) {
	m.Metadata = pipeline.Metadata{Stream: p.path, Position: int64(idx), Source: p.meta}
	if p.tc != nil {
		m.SetAcknowledger(p.tracker, ack.Ref{Ptr: p.tc})
	}
}

// endChunk seals the current chunk at next and reports it.
func (p *Producer[T]) endChunk(next dsclient.Offset) {
	m := p.meta
	if p.tc != nil {
		p.tc.Seal(next)
		p.statsMu.Lock()
		for i := len(p.fifo) - 1; i >= 0; i-- {
			if p.fifo[i].tc == p.tc {
				p.fifo[i].next = next
				break
			}
		}
		if len(p.fifo) > 64 {
			p.pruneLocked(p.tracker.Committed())
		}
		p.statsMu.Unlock()
		p.tc = nil
	} else if p.opts.Commit == CommitOnReceive && m != nil && next != m.Next {
		// The body was resumed and reached further than the first response said.
		_, _ = p.tracker.Track(context.Background(), 0, next)
	}
	p.atTail.Store(m != nil && m.UpToDate)
	if m != nil {
		p.obs.ProducerChunk(ProducerChunkEvent{URL: m.URL, Start: m.Start, Next: next, Messages: p.chunkMsgs,
			DecodeFailures: p.chunkFail, UpToDate: m.UpToDate, Closed: m.Closed})
	}
}

// Close ends the run: it stops reading, stops the periodic checkpoint saves and saves the
// committed offset one last time (when it moved since the last save). The pipeline calls it
// after the last acknowledgement; ctx bounds the final save. Close returns the save's error.
// It is safe to call more than once; later calls return nil.
func (p *Producer[T]) Close(ctx context.Context) error {
	p.readCancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if !p.started {
		return nil
	}
	p.reader.Close()
	p.saverStop()
	<-p.saverDone
	if err := p.saver.Flush(ctx); err != nil {
		return fmt.Errorf("durablestreams: save final checkpoint %q: %w", p.key, err)
	}
	return nil
}

// discardStore is the checkpoint store of a producer without one: the saver then only
// reports advances.
type discardStore struct{}

func (discardStore) Load(context.Context, string) (string, bool, error) { return "", false, nil }
func (discardStore) Save(ctx context.Context, _, _ string) error        { return ctx.Err() }

// observedStore reports saves to the producer's observer.
type observedStore struct {
	ack.CheckpointStore
	url  string
	obs  ProducerObserver
	real bool
}

func (s *observedStore) Save(ctx context.Context, key, offset string) error {
	t0 := time.Now()
	err := s.CheckpointStore.Save(ctx, key, offset)
	if s.real {
		s.obs.CheckpointSaved(CheckpointEvent{URL: s.url, Key: key, Offset: dsclient.Offset(offset), Duration: time.Since(t0), Err: err})
	}
	if err == nil {
		s.obs.Committed(CommitEvent{URL: s.url, Key: key, Offset: dsclient.Offset(offset)})
	}
	return err
}
