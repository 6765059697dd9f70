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

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/optcheck"
	"github.com/sluice-go/sluice/pipeline"
)

// CommitMode says when a [Producer] counts a message as done for its committed position.
type CommitMode int

const (
	// CommitOnAck advances the committed position past a message only once it and every
	// message before it have been acknowledged (successfully, or failed and handled by the
	// failure policy): at-least-once delivery. A crash re-delivers what was in flight.
	CommitOnAck CommitMode = iota
	// CommitOnReceive advances the committed position past the messages of each Produce call
	// and saves it to the checkpoint store before they are handed to the pipeline:
	// at-most-once delivery. A crash or a stop loses what was received but not finished;
	// nothing is ever delivered twice.
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
	// GoneFail ends the run with the *dsclient.Error (matching dsclient.ErrGone).
	GoneFail GonePolicy = iota
	// GoneResumeEarliest logs a warning, reports [ProducerObserver.Gone], and resumes from
	// the earliest offset the server reports (from the beginning when it reports none).
	// The messages between the two offsets are lost; positions go on counting from the
	// last one delivered.
	GoneResumeEarliest
)

// NotFoundPolicy says what a [Producer] does when the stream does not exist (404).
type NotFoundPolicy int

const (
	// NotFoundFail ends the run with the *dsclient.Error (matching dsclient.ErrNotFound).
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
	// Offset is where reading starts when the checkpoint store has no position saved (or
	// there is no store): dsclient.Beginning, dsclient.Now or an offset token. It is also
	// the origin positions count from (see the package documentation). Default:
	// dsclient.Beginning.
	Offset dsclient.Offset
	// Live selects what happens at the stream's tail: dsclient.LiveOff drains the pipeline
	// and ends the run once the stream is read up to date; LiveLongPoll, LiveAuto and
	// LiveSSE follow the stream until the run is stopped. A closed stream ends the run in
	// every mode. Default: LiveOff.
	Live dsclient.LiveMode
	// Commit is the commit mode. Default: [CommitOnAck].
	Commit CommitMode
	// Checkpoints saves the committed position, and gives the start of the next run.
	// Default: none (the committed position is only available from [Producer.Committed]).
	Checkpoints ack.CheckpointStore
	// CheckpointKey is the key under which Checkpoints keeps the position. Default:
	// ack.CheckpointKey(Name, the stream URL's path), which survives a change of the
	// server's host name; a position saved by an earlier version under the key made from
	// the whole URL is read too (see the package documentation).
	CheckpointKey string
	// CheckpointInterval is the least time between two saves of an advancing committed
	// position (a drain always saves the last one). Default: 1s.
	CheckpointInterval time.Duration
	// MaxBytes is dsclient.ReadOptions.MaxBytes: the largest item, SSE batch or byte chunk
	// held in memory. Default: 64 MiB.
	MaxBytes int
	// IdleTimeout is dsclient.ReadOptions.IdleTimeout: a connection that sends nothing for
	// this long is given up and the read resumed. Default: 60s.
	IdleTimeout time.Duration
	// LongPollTimeout is dsclient.ReadOptions.LongPollTimeout: the server's long-poll
	// timeout, if known. Default: learned from the server's answers.
	LongPollTimeout time.Duration
	// OnParseError is dsclient.ReadOptions.OnParseError: what a malformed response body
	// leads to. dsclient.ParseFail ends the run with the *dsclient.Error (kind ErrParse,
	// naming the stream, the offset and the byte position); dsclient.ParseRetry treats it as
	// a transient fault (a proxy that corrupts a body) and reads the response again.
	// Default: ParseFail.
	OnParseError dsclient.ParsePolicy
	// Decode turns one item into the message data: for a JSON stream, one JSON value of
	// the stream's array; for a byte or text stream, one chunk, or one token of Split.
	// data is valid only during the call (copy what must outlive it). An error makes the
	// message a failed message carrying a *[DecodeError]; the stream goes on. Default:
	// for a JSON stream, encoding/json into T (the item's bytes when T is a byte slice such
	// as []byte or json.RawMessage); for a byte or text stream, the bytes when T is a byte
	// slice and the text when T is a string (any other T needs a Decode).
	Decode func(data []byte, dst *T) error
	// JSON decodes the items of a JSON stream when Decode is nil: dsclient.StdJSON
	// (encoding/json) or a faster decoder with the same semantics, such as
	// dsclient/segmentiojson.Decoder. Default: dsclient.StdJSON.
	JSON dsclient.JSONDecoder
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
	// Logger logs where a run starts from and warnings (read failures that will be
	// retried, 410 resumes, failed checkpoint saves or loads). Default: slog.Default().
	Logger *slog.Logger
}

const defaultCheckpointInterval = time.Second

// Producer is a [pipeline.Producer] that reads a durable stream on demand and commits its
// position as the pipeline acknowledges messages.
//
// Every response (or SSE batch) read is kept in one [Chunk] record. Each Produce call hands
// out the messages the pipeline asked for and tracks them, as one run, in an [ack.Tracker]
// with the position after them: the committed position is the position after the longest
// prefix of messages that are done, even in the middle of a response, and is saved to the
// checkpoint store as it advances and at the end of the run. Items are read one by one as
// the response streams in, only when the pipeline asks, so a paused pipeline pauses the
// response body; the pipeline's in-flight bound (pipeline.Options.MaxInFlight) is the
// producer's bound too.
//
// A Producer serves one pipeline run: it starts (loads its checkpoint, starts saving) on
// the first Produce and stops on Close. It implements [pipeline.Producer],
// [pipeline.DrainNotifier] and [pipeline.Closer]. Its methods are safe for concurrent use.
type Producer[T any] struct {
	opts  ProducerOptions[T]
	key   string
	path  string // the stream's path: Metadata.Stream
	url   string // the stream's URL without credentials or query
	log   *slog.Logger
	obs   ProducerObserver
	dec   decoder[T]
	retry dsclient.RetryPolicy

	readCtx    context.Context
	readCancel context.CancelFunc

	mu        sync.Mutex // held by Produce and Close
	started   bool
	closed    bool
	ended     bool
	saver     *ack.Saver[mark]
	saverStop context.CancelFunc
	saverDone chan struct{}
	reader    *dsclient.ChunkReader
	backoff   *dsclient.Backoff

	// The response being emitted.
	cur     *dsclient.Chunk // nil between responses
	rec     *Chunk          // its record
	idx     int64           // index in the response of the next message
	skip    int64           // messages at the start of the response already done (a restart inside it)
	failed  int             // decode failures in the response
	pieces  [][]byte        // byte streams: the response's messages not emitted yet
	last    *Chunk          // the last record made
	prev    *dsclient.Chunk // the last response begun
	recDone bool            // rec was read to its end
	first   int64           // the position of the next response's first message

	tracker  atomic.Pointer[ack.Tracker[mark]] // set at start
	head     atomic.Pointer[Chunk]             // the first record made, for Stats
	atTail   atomic.Bool
	reading  atomic.Pointer[ack.Position] // where reading stands, for Stats
	chunks   atomic.Uint64
	messages atomic.Uint64
	decodeKO atomic.Uint64

	deferred  atomic.Bool // the pipeline decodes JSON items on its processors (DecodeMessages)
	fillBytes int         // the size of the last fill's arena

	warmed   sync.WaitGroup  // warm's goroutine, waited for by Close
	ahead    *dsclient.Chunk // the first response, read ahead by warm
	aheadErr error
}

var (
	_ pipeline.Producer[int] = (*Producer[int])(nil)
	_ pipeline.DrainNotifier = (*Producer[int])(nil)
	_ pipeline.Closer        = (*Producer[int])(nil)
	_ pipeline.Decoder[int]  = (*Producer[int])(nil)
)

// NewProducer validates opts and returns a producer. It does no I/O: the checkpoint is
// loaded and the first request sent by the first Produce. Invalid options are reported
// all at once in a *[pipeline.OptionsError], each problem naming its field.
func NewProducer[T any](opts ProducerOptions[T]) (*Producer[T], error) {
	c := optcheck.New("durablestreams", nil)
	if opts.Stream == nil {
		c.Bad("ProducerOptions.Stream", "required")
	}
	if opts.Live < dsclient.LiveOff || opts.Live > dsclient.LiveSSE {
		c.Bad("ProducerOptions.Live", "unknown live mode %d", int(opts.Live))
	}
	if opts.Commit != CommitOnAck && opts.Commit != CommitOnReceive {
		c.Bad("ProducerOptions.Commit", "unknown commit mode %d", int(opts.Commit))
	}
	if opts.OnGone != GoneFail && opts.OnGone != GoneResumeEarliest {
		c.Bad("ProducerOptions.OnGone", "unknown policy %d", int(opts.OnGone))
	}
	if opts.OnNotFound != NotFoundFail && opts.OnNotFound != NotFoundWait {
		c.Bad("ProducerOptions.OnNotFound", "unknown policy %d", int(opts.OnNotFound))
	}
	if opts.MaxBytes < 0 {
		c.Bad("ProducerOptions.MaxBytes", "must be >= 0, got %d", opts.MaxBytes)
	}
	if opts.IdleTimeout < 0 {
		c.Bad("ProducerOptions.IdleTimeout", "must be >= 0, got %v", opts.IdleTimeout)
	}
	if opts.LongPollTimeout < 0 {
		c.Bad("ProducerOptions.LongPollTimeout", "must be >= 0, got %v", opts.LongPollTimeout)
	}
	if opts.CheckpointInterval < 0 {
		c.Bad("ProducerOptions.CheckpointInterval", "must be >= 0, got %v", opts.CheckpointInterval)
	}
	if opts.Checkpoints != nil && opts.Name == "" && opts.CheckpointKey == "" {
		c.Bad("ProducerOptions.Name", "required with Checkpoints (or set CheckpointKey)")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	if opts.Offset == "" {
		opts.Offset = dsclient.Beginning
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = defaultCheckpointInterval
	}
	p := &Producer[T]{opts: opts, log: opts.Logger, obs: opts.Observer, dec: newDecoder(opts.Decode, opts.JSON)}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.obs == nil {
		p.obs = NopProducerObserver{}
	}
	p.url = opts.Stream.URL()
	if u, err := url.Parse(p.url); err == nil {
		p.path = u.Path
	}
	p.key = opts.CheckpointKey
	if p.key == "" {
		p.key = ack.CheckpointKey(opts.Name, p.path)
	}
	p.retry = opts.Stream.RetryPolicy()
	p.backoff = p.retry.Backoff()
	p.readCtx, p.readCancel = context.WithCancel(context.Background())
	return p, nil
}

// Key returns the checkpoint key the producer saves its position under.
func (p *Producer[T]) Key() string { return p.key }

// Committed returns the committed position: where a restart resumes. Before the first
// Produce it is the configured start offset. Safe for concurrent use.
func (p *Producer[T]) Committed() ack.Position {
	if t := p.tracker.Load(); t != nil {
		return t.Committed().pos
	}
	return p.configuredStart()
}

// configuredStart is where a run starts without a checkpoint: the configured offset, where
// positions count from 0 at the beginning of the stream and are unknown elsewhere until the
// run starts (see loadStart).
func (p *Producer[T]) configuredStart() ack.Position {
	if p.opts.Offset == dsclient.Beginning {
		return ack.Position{Offset: string(p.opts.Offset)}
	}
	return ack.Position{Offset: string(p.opts.Offset), Seq: -1}
}

// PrepareForDraining cancels a read in progress, so that draining does not wait for a live
// read to return. It does not block.
func (p *Producer[T]) PrepareForDraining() { p.readCancel() }

// Produce fills msgs with the next messages of the stream, reading only what it hands out.
// It blocks until it has at least one message, the run ends or the input ends; it returns
// [pipeline.ErrEndOfInput] once the stream is read up to date (LiveOff) or closed, the
// *dsclient.Error of a read that cannot go on (see OnGone and OnNotFound), and ctx's error
// when ctx ends. Transient failures are retried with backoff, indefinitely, resuming where
// the read stood, so that nothing is skipped or repeated.
func (p *Producer[T]) Produce(ctx context.Context, msgs []pipeline.Message[T]) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errors.New("durablestreams: producer is closed")
	}
	stop := context.AfterFunc(ctx, p.readCancel)
	defer stop()
	if !p.started {
		if err := p.startup(ctx); err != nil {
			return 0, err
		}
	}
	if p.ended {
		return 0, pipeline.ErrEndOfInput
	}
	for {
		if p.cur == nil && len(p.pieces) == 0 {
			c, err := p.next()
			if err != nil {
				if err := p.readFailed(ctx, err); err != nil {
					return 0, err
				}
				continue
			}
			if err := p.begin(c); err != nil {
				if err := p.readFailed(ctx, err); err != nil {
					return 0, err
				}
				continue
			}
		}
		n, err := p.fill(ctx, msgs)
		if n > 0 {
			// Hand over what was read; a read error is met again by the next call.
			return n, nil
		}
		if err != nil {
			if err := p.readFailed(ctx, err); err != nil {
				return 0, err
			}
		}
	}
}

// next returns the next response: the one warm read ahead, if any, else the reader's next.
// Called with p.mu held.
func (p *Producer[T]) next() (*dsclient.Chunk, error) {
	if p.ahead != nil || p.aheadErr != nil {
		c, err := p.ahead, p.aheadErr
		p.ahead, p.aheadErr = nil, nil
		return c, err
	}
	return p.reader.Next()
}

// warm starts the producer (loads its checkpoint) and sends its first request in the
// background, so that the first Produce finds the response there: for a caller that opens
// many producers ahead of reading them, such as the subscription worker. It does not block;
// Close waits for what it started.
func (p *Producer[T]) warm() {
	p.warmed.Add(1)
	go func() {
		defer p.warmed.Done()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed || p.started {
			return
		}
		if err := p.startup(p.readCtx); err != nil {
			return // the first Produce starts it again, and meets the error itself
		}
		p.ahead, p.aheadErr = p.reader.Next()
	}()
}

// readFailed decides what a read error means: nil to read again (after a backoff, or after
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
	// The reader retries transient failures itself, for as long as the run lives: what
	// reaches here is a failure that a retry cannot fix, unless a policy says to wait.
	var e *dsclient.Error
	errors.As(err, &e)
	switch {
	case errors.Is(err, dsclient.ErrGone) && p.opts.OnGone == GoneResumeEarliest:
		return p.resumeEarliest(e)
	case errors.Is(err, dsclient.ErrNotFound) && p.opts.OnNotFound == NotFoundWait:
	default:
		return err
	}
	// The reader's next Next continues the response whose read failed, if any.
	p.cur = nil
	d := p.backoff.Next()
	p.log.Warn("durablestreams: stream not found; waiting for it", "url", p.url, "offset", p.reader.Offset(), "in", d)
	return p.sleep(ctx, d)
}

// readOptions returns the options of a read from offset: the producer's, retrying
// transient failures for as long as the run lives.
func (p *Producer[T]) readOptions(offset dsclient.Offset) dsclient.ReadOptions {
	return dsclient.ReadOptions{Offset: offset, Live: p.opts.Live, MaxBytes: p.opts.MaxBytes,
		Retry:       dsclient.RetryPolicy{MaxAttempts: dsclient.UnlimitedAttempts},
		IdleTimeout: p.opts.IdleTimeout, LongPollTimeout: p.opts.LongPollTimeout, OnParseError: p.opts.OnParseError}
}

// sleep waits d, or until the run or the read is stopped.
func (p *Producer[T]) sleep(ctx context.Context, d time.Duration) error {
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

// resumeEarliest restarts the read at the earliest retained offset after a 410.
func (p *Producer[T]) resumeEarliest(e *dsclient.Error) error {
	from := p.reader.Offset()
	to := dsclient.Beginning
	if e != nil && e.EarliestOffset != "" {
		to = e.EarliestOffset
	}
	p.log.Warn("durablestreams: offset no longer retained; resuming from the earliest offset, skipping what lies between",
		"url", p.url, "from", from, "resume_at", to)
	p.obs.Gone(GoneEvent{URL: p.url, From: from, ResumeAt: to})
	if p.cur != nil {
		// The response being read is gone too: what was emitted of it stays tracked.
		p.cur = nil
		p.first = p.rec.first + p.idx
	}
	p.pieces = nil
	p.skip = 0
	if t := p.tracker.Load(); to != dsclient.Beginning {
		// The committed position jumps over the gap once what came before is done.
		t.Track(context.Background(), 0, mark{pos: ack.Position{Offset: string(to), Seq: p.first}, c: p.last, end: true}) //nolint:errcheck // uncapped: never fails
	}
	p.reader.Close()
	p.reader = p.opts.Stream.Reader(p.readCtx, p.readOptions(to))
	return nil
}

// begin takes c as the response to emit: a new record, or the continuation of the response
// whose body failed.
func (p *Producer[T]) begin(c *dsclient.Chunk) error {
	p.backoff.Reset()
	info := c.Info()
	if c == p.prev && !p.recDone {
		// The reader continues the response whose read failed (see readFailed).
		p.cur = c
		return nil
	}
	p.prev = c
	rec := &Chunk{stream: p.path, url: p.url, first: p.first, fetched: time.Now()}
	rec.info.Store(&info)
	if p.last != nil {
		p.last.succ.Store(rec)
	} else {
		p.head.Store(rec)
	}
	p.last, p.rec, p.cur = rec, rec, c
	p.idx, p.failed, p.recDone = 0, 0, false
	p.chunks.Add(1)
	pos := ack.Position{Offset: string(info.StartOffset)}
	p.reading.Store(&pos)
	if !c.IsJSON() {
		return p.split(c)
	}
	return nil
}

// split reads a byte or text response whole (within MaxBytes) and cuts it into the pieces to
// emit.
func (p *Producer[T]) split(c *dsclient.Chunk) error {
	data, err := c.ReadAll()
	if err != nil {
		return err
	}
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
	if p.skip > 0 {
		k := min(int(p.skip), len(p.pieces))
		clear(p.pieces[:k])
		p.pieces = p.pieces[k:]
		p.idx += int64(k)
		p.skip = 0
	}
	if len(p.pieces) == 0 {
		p.pieces = nil
		p.endChunk(c.Info())
	}
	return nil
}

// fill emits up to len(dst) messages of the current response and tracks them. At the end of
// the response it tracks the position after it. A read error is returned with the messages
// filled before it.
func (p *Producer[T]) fill(ctx context.Context, dst []pipeline.Message[T]) (int, error) {
	rec := p.rec
	start := rec.info.Load().StartOffset
	i := 0
	var rerr error
	if len(p.pieces) > 0 {
		k := min(len(dst), len(p.pieces))
		for ; i < k; i++ {
			p.emit(&dst[i], p.pieces[i], p.dec.bytes, start)
		}
		clear(p.pieces[:k])
		p.pieces = p.pieces[k:]
		if len(p.pieces) == 0 {
			p.pieces = nil
			rerr = io.EOF
		}
	} else {
		c := p.cur
		var f *fill
		if p.deferred.Load() {
			f = p.newFill(len(dst))
		}
		for i < len(dst) {
			raw, err := c.NextItem()
			if err != nil {
				rerr = err
				break
			}
			if p.skip > 0 { // done before a restart inside this response
				p.skip--
				p.idx++
				continue
			}
			if f != nil {
				pos := p.rec.first + p.idx
				f.add(raw, pos)
				dst[i].Metadata = pipeline.Metadata{Stream: p.path, Position: pos, Source: f}
				p.idx++
			} else {
				p.emit(&dst[i], raw, p.dec.json, start)
			}
			i++
		}
		if f != nil {
			p.fillBytes = len(f.arena) // the next arena starts at this size
		}
	}
	if i > 0 {
		if err := p.track(ctx, dst[:i], inside(rec, start, p.idx)); err != nil {
			return 0, err
		}
	}
	if rerr == io.EOF {
		info := rec.Info()
		if p.cur != nil {
			info = p.cur.Info()
		}
		p.endChunk(info)
		rerr = nil
	}
	return i, rerr
}

// emit fills m with the message at index p.idx of the current response.
func (p *Producer[T]) emit(m *pipeline.Message[T], raw []byte, decode func([]byte, *T) error, start dsclient.Offset) {
	pos := p.rec.first + p.idx
	if err := decode(raw, &m.Data); err != nil {
		m.Fail(&DecodeError{URL: p.url, Offset: start, Position: pos, Err: err, Raw: append([]byte(nil), raw...)})
		p.failed++
		p.decodeKO.Add(1)
	}
	m.Metadata = pipeline.Metadata{Stream: p.path, Position: pos, Source: p.rec}
	p.idx++
}

// track registers msgs, just filled, with the tracker as one run ending at mk, and sets
// their acknowledger; with CommitOnReceive it commits mk and saves it first.
func (p *Producer[T]) track(ctx context.Context, msgs []pipeline.Message[T], mk mark) error {
	t := p.tracker.Load()
	p.messages.Add(uint64(len(msgs)))
	p.reading.Store(&mk.pos)
	if p.opts.Commit == CommitOnReceive {
		// At most once: the messages count as done before they are handed out, and their
		// position is saved first.
		t.Track(ctx, 0, mk) //nolint:errcheck // uncapped: never fails
		if p.opts.Checkpoints != nil {
			if err := p.saver.Flush(ctx); err != nil {
				return fmt.Errorf("durablestreams: save checkpoint before delivery: %w", err)
			}
		}
		p.obs.ProducerMessages(ProducerMessagesEvent{URL: p.url, Messages: len(msgs), DecodeFailures: countFailed(msgs)})
		return nil
	}
	entry, err := t.Track(ctx, len(msgs), mk)
	if err != nil {
		return err
	}
	for i := range msgs {
		msgs[i].SetAcknowledger(t, ack.Ref{Ptr: entry})
	}
	p.obs.ProducerMessages(ProducerMessagesEvent{URL: p.url, Messages: len(msgs), DecodeFailures: countFailed(msgs)})
	return nil
}

func countFailed[T any](msgs []pipeline.Message[T]) int {
	n := 0
	for i := range msgs {
		if msgs[i].Failed() {
			n++
		}
	}
	return n
}

// endChunk tracks the position after the current response, whose final metadata is info,
// and reports it.
func (p *Producer[T]) endChunk(info dsclient.ChunkInfo) {
	rec := p.rec
	rec.info.Store(&info)
	p.recDone = true
	p.cur = nil
	mk := after(rec, info.NextOffset, p.idx)
	p.first = mk.pos.Seq
	p.tracker.Load().Track(context.Background(), 0, mk) //nolint:errcheck // uncapped: never fails
	p.reading.Store(&mk.pos)
	p.atTail.Store(info.UpToDate)
	p.obs.ProducerChunk(ProducerChunkEvent{URL: p.url, Start: info.StartOffset, Next: info.NextOffset,
		Messages: int(p.idx), DecodeFailures: p.failed, UpToDate: info.UpToDate, Closed: info.Closed})
}

// Close ends the run: it stops reading, stops the periodic checkpoint saves and saves the
// committed position one last time (when it moved since the last save). The pipeline calls
// it after the last acknowledgement; ctx bounds the final save. Close returns the save's
// error. It is safe to call more than once, and before or after a failed start; later calls
// return nil.
func (p *Producer[T]) Close(ctx context.Context) error {
	p.readCancel()
	p.warmed.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.reader != nil {
		p.reader.Close()
	}
	if p.saver == nil {
		return nil
	}
	p.saverStop()
	<-p.saverDone
	if err := p.saver.Flush(ctx); err != nil {
		return fmt.Errorf("durablestreams: save final checkpoint %q: %w", p.key, err)
	}
	return nil
}
