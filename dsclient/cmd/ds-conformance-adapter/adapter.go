package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
)

// dynamic is a header or parameter whose value is computed on every request.
type dynamic struct {
	kind    string // counter, timestamp, token
	counter int
	token   string
	last    string // the value the last request carried
}

func (d *dynamic) next() string {
	switch d.kind {
	case "counter":
		d.counter++
		d.last = strconv.Itoa(d.counter)
	case "timestamp":
		d.last = strconv.FormatInt(time.Now().UnixMilli(), 10)
	default:
		d.last = d.token
	}
	return d.last
}

type adapter struct {
	mu        sync.Mutex // guards dynamic values (header funcs run on client goroutines)
	server    string
	client    *ds.Client
	ctypes    map[string]string
	headers   map[string]*dynamic
	params    map[string]*dynamic
	producers map[string]*ds.Writer
}

func newAdapter() *adapter {
	c, _ := ds.NewClient()
	return &adapter{client: c, ctypes: map[string]string{}, headers: map[string]*dynamic{},
		params: map[string]*dynamic{}, producers: map[string]*ds.Writer{}}
}

func (a *adapter) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for k, w := range a.producers {
		w.Close(ctx)
		delete(a.producers, k)
	}
}

const cmdTimeout = 25 * time.Second

// stream returns a handle for path with the command's static headers and the dynamic ones.
func (a *adapter) stream(path string, hdrs map[string]string) *ds.Stream {
	var opts []ds.Option
	for name, d := range a.headers {
		if _, static := hdrs[name]; static {
			continue // the command's own header wins
		}
		opts = append(opts, ds.WithHeaderFunc(name, func(context.Context) (string, error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			return d.next(), nil
		}))
	}
	for name, d := range a.params {
		opts = append(opts, ds.WithParamFunc(name, func(context.Context) (string, error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			return d.next(), nil
		}))
	}
	for k, v := range hdrs {
		opts = append(opts, ds.WithHeader(k, v))
	}
	if ct, ok := a.ctypes[path]; ok {
		opts = append(opts, ds.WithContentType(ct))
	}
	return a.client.Stream(a.server+path, opts...)
}

// sent returns the dynamic values the last request carried.
func (a *adapter) sent() (hdrs, params map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.headers) > 0 {
		hdrs = map[string]string{}
		for k, d := range a.headers {
			hdrs[k] = d.last
		}
	}
	if len(a.params) > 0 {
		params = map[string]string{}
		for k, d := range a.params {
			params[k] = d.last
		}
	}
	return hdrs, params
}

func (a *adapter) handle(c *command) any {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	switch c.Type {
	case "init":
		a.shutdown()
		a.server = c.ServerURL
		a.ctypes, a.headers, a.params = map[string]string{}, map[string]*dynamic{}, map[string]*dynamic{}
		return result{Type: "init", Success: true, ClientName: "sluice-go-durablestreams", ClientVersion: "0.1.0",
			Features: map[string]bool{"batching": true, "sse": true, "longPoll": true, "auto": true, "streaming": true,
				"dynamicHeaders": true, "retryOptions": true, "batchItems": true, "strictZeroValidation": true}}
	case "shutdown":
		a.shutdown()
		return result{Type: "shutdown", Success: true}
	case "create":
		return a.create(ctx, c)
	case "connect", "head":
		return a.head(ctx, c)
	case "append":
		return a.append(ctx, c)
	case "read":
		return a.read(c)
	case "delete":
		if err := a.stream(c.Path, c.Headers).Delete(ctx); err != nil {
			return errResult(c.Type, err)
		}
		delete(a.ctypes, c.Path)
		return result{Type: "delete", Success: true, Status: 200}
	case "close":
		return a.close(ctx, c)
	case "set-dynamic-header":
		a.headers[c.Name] = &dynamic{kind: c.ValueType, token: c.InitialValue}
		return result{Type: c.Type, Success: true}
	case "set-dynamic-param":
		a.params[c.Name] = &dynamic{kind: c.ValueType}
		return result{Type: c.Type, Success: true}
	case "clear-dynamic":
		a.headers, a.params = map[string]*dynamic{}, map[string]*dynamic{}
		return result{Type: c.Type, Success: true}
	case "idempotent-append", "idempotent-append-batch", "idempotent-close", "idempotent-detach":
		return a.idempotent(ctx, c)
	case "validate":
		return a.validate(c)
	case "benchmark":
		return a.benchmark(c)
	}
	return errorResult{Type: "error", CommandType: c.Type, ErrorCode: "NOT_SUPPORTED", Message: "unknown command " + c.Type}
}

func (a *adapter) create(ctx context.Context, c *command) any {
	ct := c.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	opts := ds.CreateOptions{ContentType: ct, Closed: c.Closed}
	if c.TTLSeconds != nil {
		opts.TTL = time.Duration(*c.TTLSeconds) * time.Second
	}
	if c.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, c.ExpiresAt)
		if err != nil {
			return errorResult{Type: "error", CommandType: c.Type, ErrorCode: "INVALID_ARGUMENT", Message: "expiresAt: " + err.Error()}
		}
		opts.ExpiresAt = t
	}
	if c.Data != nil {
		opts.Body = []byte(*c.Data)
	}
	s := a.stream(c.Path, c.Headers)
	res, err := s.Create(ctx, opts)
	if err != nil {
		return errResult(c.Type, err)
	}
	a.ctypes[c.Path] = ct
	status := 200
	if res.Created {
		status = 201
	}
	off := string(res.NextOffset)
	return result{Type: "create", Success: true, Status: status, Offset: &off}
}

func (a *adapter) head(ctx context.Context, c *command) any {
	m, err := a.stream(c.Path, c.Headers).Head(ctx)
	if err != nil {
		return errResult(c.Type, err)
	}
	if m.ContentType != "" {
		a.ctypes[c.Path] = m.ContentType
	}
	off := string(m.NextOffset)
	r := result{Type: c.Type, Success: true, Status: 200, Offset: &off}
	if c.Type == "head" {
		r.ContentType = m.ContentType
		r.StreamClosed = ptr(m.Closed)
		if m.TTL > 0 {
			r.TTLSeconds = ptr(int64(m.TTL / time.Second))
		}
		if !m.ExpiresAt.IsZero() {
			r.ExpiresAt = m.ExpiresAt.Format(time.RFC3339Nano)
		}
	}
	return r
}

func (a *adapter) payload(c *command) ([]byte, error) {
	if c.Data == nil {
		return nil, nil
	}
	if c.Binary {
		return base64.StdEncoding.DecodeString(*c.Data)
	}
	return []byte(*c.Data), nil
}

func (a *adapter) append(ctx context.Context, c *command) any {
	data, err := a.payload(c)
	if err != nil {
		return errorResult{Type: "error", CommandType: c.Type, ErrorCode: "INVALID_ARGUMENT", Message: err.Error()}
	}
	// The suite expects a plain append to be retried on any 5xx (as its reference client
	// does): opt in to ambiguous retries.
	opts := ds.AppendOptions{RetryAmbiguous: true}
	if c.Seq != nil {
		opts.Seq = strconv.FormatInt(*c.Seq, 10)
	}
	res, err := a.stream(c.Path, c.Headers).Append(ctx, data, opts)
	if err != nil {
		return errResult(c.Type, err)
	}
	h, p := a.sent()
	off := string(res.NextOffset)
	return result{Type: "append", Success: true, Status: 200, Offset: &off, HeadersSent: h, ParamsSent: p}
}

func (a *adapter) close(ctx context.Context, c *command) any {
	data, err := a.payload(c)
	if err != nil {
		return errorResult{Type: "error", CommandType: c.Type, ErrorCode: "INVALID_ARGUMENT", Message: err.Error()}
	}
	res, err := a.stream(c.Path, nil).Append(ctx, data, ds.AppendOptions{Close: true, ContentType: c.ContentType})
	if err != nil {
		return errResult(c.Type, err)
	}
	return result{Type: "close", Success: true, FinalOffset: ptr(string(res.NextOffset))}
}

// read collects chunks as the suite's reference adapter does: a catch-up read returns all its
// data as one chunk; a live read returns one chunk per response (or SSE batch) with data,
// until maxChunks, up-to-date (when asked), end of input, or timeoutMs.
func (a *adapter) read(c *command) any {
	opts := ds.ReadOptions{}
	if c.Offset != nil {
		opts.Offset = ds.Offset(*c.Offset)
		// The suite spells the stream start "0" in one case ("reading from offset 0 or empty
		// should start from beginning"); the protocol's spelling is "-1", and the reference
		// server rejects "0". The client treats offsets as opaque, so the mapping lives here.
		if opts.Offset == "0" {
			opts.Offset = ds.Beginning
		}
	}
	var live any
	json.Unmarshal(c.Live, &live)
	switch live {
	case true:
		opts.Live = ds.LiveAuto
	case "long-poll":
		opts.Live = ds.LiveLongPoll
	case "sse":
		opts.Live = ds.LiveSSE
	}
	timeout := 5 * time.Second
	if c.TimeoutMs != nil {
		timeout = time.Duration(*c.TimeoutMs) * time.Millisecond
	}
	maxChunks := 100
	if c.MaxChunks != nil {
		maxChunks = *c.MaxChunks
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if opts.Live != ds.LiveOff {
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	s := a.stream(c.Path, c.Headers)
	r := s.Reader(ctx, opts)
	defer r.Close()

	chunks := []readChunk{}
	offset := string(opts.Offset)
	if offset == "" {
		offset = "-1"
	}
	var upToDate, closed bool
	var cursor string
	var items [][]byte // catch-up of a JSON stream: all items, one chunk
	var all []byte     // catch-up of a byte stream: all bytes, one chunk
	sawJSON := false
	status := 0 // the first response's status, as the suite's reference adapter reports
	for len(chunks) < maxChunks {
		ch, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if opts.Live != ds.LiveOff && ctx.Err() != nil {
				upToDate = true // timed out waiting: caught up, no new data
				break
			}
			return errResult(c.Type, err)
		}
		if status == 0 {
			status = ch.Status()
		}
		var data []byte
		if ch.IsJSON() {
			sawJSON = true
			var its [][]byte
			for {
				it, err := ch.NextItem()
				if err == io.EOF {
					break
				}
				if err != nil {
					return errResult(c.Type, err)
				}
				var v any // validate the item, as a client decoding it would
				if err := json.Unmarshal(it, &v); err != nil {
					return errResult(c.Type, &ds.Error{Op: ds.OpRead, URL: s.URL(), Kind: ds.ErrParse, BytePos: -1, Err: err})
				}
				var b bytes.Buffer
				json.Compact(&b, it)
				its = append(its, b.Bytes())
			}
			if opts.Live == ds.LiveOff {
				items = append(items, its...)
			} else if len(its) > 0 {
				data = append(append([]byte{'['}, bytes.Join(its, []byte{','})...), ']')
			}
		} else {
			b, err := ch.ReadAll()
			if err != nil {
				return errResult(c.Type, err)
			}
			if opts.Live == ds.LiveOff {
				all = append(all, b...)
			} else {
				data = b
			}
		}
		info := ch.Info()
		offset, upToDate, closed = string(info.NextOffset), info.UpToDate, info.Closed
		if info.Cursor != "" {
			cursor = info.Cursor
		}
		if len(data) > 0 {
			chunks = append(chunks, readChunk{Data: string(data), Offset: offset})
		}
		if opts.Live != ds.LiveOff && c.WaitUpToDate && upToDate {
			break
		}
	}
	if opts.Live == ds.LiveOff {
		if sawJSON && len(items) > 0 {
			chunks = append(chunks, readChunk{Data: "[" + string(bytes.Join(items, []byte{','})) + "]", Offset: offset})
		} else if len(all) > 0 {
			chunks = append(chunks, readChunk{Data: string(all), Offset: offset})
		}
	}
	if status == 0 {
		status = 200
	}
	h, p := a.sent()
	return result{Type: "read", Success: true, Status: status, Chunks: &chunks, Offset: &offset, UpToDate: ptr(upToDate),
		StreamClosed: ptr(closed), Cursor: cursor, HeadersSent: h, ParamsSent: p}
}

func producerKey(c *command) string { return fmt.Sprintf("%s|%s|%d", c.Path, c.ProducerID, c.Epoch) }

func (a *adapter) writer(c *command, opts ds.WriterOptions) (*ds.Writer, error) {
	return ds.NewWriter(a.stream(c.Path, c.Headers), opts)
}

func (a *adapter) idempotent(ctx context.Context, c *command) any {
	o := ds.DefaultWriterOptions(c.ProducerID)
	// The suite drives epochs itself: the protocol's fixed-epoch flow, no linger.
	o.Epoch, o.EpochPolicy, o.AutoClaim, o.MaxInFlight, o.Linger = c.Epoch, ds.EpochFixed, c.AutoClaim, 1, -1
	// A new writer instance that resends a batch an earlier instance stored under the same
	// ID, epoch and sequence gets ErrEpochInUse: the Writer never counts another lifetime's
	// state as its own data. The suite sends the same data again and expects what the
	// protocol's clients answer, success: the server has it.
	sameBatch := func(err error) bool { return errors.Is(err, ds.ErrEpochInUse) }
	cached := func() (*ds.Writer, error) {
		if w, ok := a.producers[producerKey(c)]; ok {
			return w, nil
		}
		w, err := a.writer(c, o)
		if err == nil {
			a.producers[producerKey(c)] = w
		}
		return w, err
	}
	switch c.Type {
	case "idempotent-append":
		w, err := cached()
		if err != nil {
			return errResult(c.Type, err)
		}
		data := []byte(deref(c.Data))
		if err := w.Append(ctx, data); err != nil {
			return errResult(c.Type, err)
		}
		if err := w.Flush(ctx); err != nil && !sameBatch(err) {
			return errResult(c.Type, err)
		}
		return result{Type: c.Type, Success: true, Status: 200}
	case "idempotent-append-batch":
		if c.MaxInFlight != nil && *c.MaxInFlight > 1 {
			// Small batches, many in flight: exercises the sequence-gap handling.
			o.MaxInFlight, o.MaxBatchBytes = *c.MaxInFlight, 1
		} else {
			o.Linger = time.Second
		}
		w, err := a.writer(c, o)
		if err != nil {
			return errResult(c.Type, err)
		}
		for _, it := range c.Items {
			if err := w.Append(ctx, []byte(it)); err != nil {
				w.Close(ctx)
				return errResult(c.Type, err)
			}
		}
		if err := w.Close(ctx); err != nil && !sameBatch(err) {
			return errResult(c.Type, err)
		}
		return result{Type: c.Type, Success: true, Status: 200}
	case "idempotent-close":
		w, err := cached()
		if err != nil {
			return errResult(c.Type, err)
		}
		var final []byte
		if c.Data != nil {
			final = []byte(*c.Data)
		}
		res, err := w.CloseStream(ctx, final)
		if err != nil {
			return errResult(c.Type, err)
		}
		return result{Type: c.Type, Success: true, Status: 200, FinalOffset: ptr(string(res.NextOffset))}
	default: // idempotent-detach
		if w, ok := a.producers[producerKey(c)]; ok {
			delete(a.producers, producerKey(c))
			if err := w.Close(ctx); err != nil {
				return errResult(c.Type, err)
			}
		}
		return result{Type: c.Type, Success: true, Status: 200}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (a *adapter) validate(c *command) any {
	t := c.Target
	if t == nil {
		return errorResult{Type: "error", CommandType: c.Type, ErrorCode: "INVALID_ARGUMENT", Message: "no target"}
	}
	var err error
	switch t.Target {
	case "retry-options":
		// The suite checks zero values strictly (strictZeroValidation), where a zero
		// RetryPolicy field means its default: explicit zeros are refused here, in the
		// suite's names, and the rest is the policy's own validation.
		var p ds.RetryPolicy
		var probs []string
		if t.MaxRetries != nil {
			if *t.MaxRetries < 0 {
				probs = append(probs, fmt.Sprintf("maxRetries: must be >= 0, got %d", *t.MaxRetries))
			} else {
				p.MaxAttempts = *t.MaxRetries + 1
			}
		}
		if t.InitialDelayMs != nil {
			if *t.InitialDelayMs <= 0 {
				probs = append(probs, fmt.Sprintf("initialDelayMs: must be > 0, got %g", *t.InitialDelayMs))
			} else {
				p.InitialDelay = time.Duration(*t.InitialDelayMs * float64(time.Millisecond))
			}
		}
		if t.MaxDelayMs != nil {
			if *t.MaxDelayMs <= 0 {
				probs = append(probs, fmt.Sprintf("maxDelayMs: must be > 0, got %g", *t.MaxDelayMs))
			} else {
				p.MaxDelay = time.Duration(*t.MaxDelayMs * float64(time.Millisecond))
			}
		}
		if t.Multiplier != nil {
			if *t.Multiplier < 1 {
				probs = append(probs, fmt.Sprintf("multiplier: must be >= 1, got %g", *t.Multiplier))
			} else {
				p.Multiplier = *t.Multiplier
			}
		}
		if p.MaxDelay > 0 && p.MaxDelay < p.InitialDelay {
			probs = append(probs, fmt.Sprintf("maxDelayMs: must be >= initialDelayMs (%g), got %g", *t.InitialDelayMs, *t.MaxDelayMs))
		}
		if len(probs) > 0 {
			err = fmt.Errorf("%w: %s", ds.ErrInvalidArgument, strings.Join(probs, "; "))
		} else {
			err = p.Validate()
		}
	case "idempotent-producer":
		// As for retry options: explicit zeros and negatives are refused here, in the
		// suite's names (a zero WriterOptions field means its default); the rest is the
		// options' own validation.
		o := ds.DefaultWriterOptions("test-producer")
		var probs []string
		if t.ProducerID != nil {
			o.ID = *t.ProducerID
		}
		if t.Epoch != nil {
			if *t.Epoch < 0 {
				probs = append(probs, fmt.Sprintf("epoch: must be >= 0, got %d", *t.Epoch))
			}
			o.Epoch = *t.Epoch
		}
		if t.MaxBatchBytes != nil {
			if *t.MaxBatchBytes <= 0 {
				probs = append(probs, fmt.Sprintf("maxBatchBytes: must be > 0, got %d", *t.MaxBatchBytes))
			}
			o.MaxBatchBytes = *t.MaxBatchBytes
		}
		if t.MaxBatchItems != nil {
			if *t.MaxBatchItems <= 0 {
				probs = append(probs, fmt.Sprintf("maxBatchItems: must be > 0, got %d", *t.MaxBatchItems))
			}
			o.MaxBatchItems = *t.MaxBatchItems
		}
		if len(probs) > 0 {
			err = fmt.Errorf("%w: %s", ds.ErrInvalidArgument, strings.Join(probs, "; "))
		} else {
			err = o.Validate()
		}
	default:
		return errorResult{Type: "error", CommandType: c.Type, ErrorCode: "NOT_SUPPORTED", Message: "unknown validation target " + t.Target}
	}
	if err != nil {
		return errorResult{Type: "error", CommandType: c.Type, ErrorCode: "INVALID_ARGUMENT", Message: err.Error()}
	}
	return result{Type: "validate", Success: true}
}

// errResult maps a client error to the suite's error codes.
func errResult(cmd string, err error) errorResult {
	r := errorResult{Type: "error", CommandType: cmd, ErrorCode: "INTERNAL_ERROR", Message: err.Error()}
	var e *ds.Error
	if errors.As(err, &e) {
		r.Status = e.Status
	}
	switch {
	case errors.Is(err, ds.ErrNotFound):
		r.ErrorCode, r.Status = "NOT_FOUND", 404
	case errors.Is(err, ds.ErrStreamClosed):
		r.ErrorCode, r.Status = "STREAM_CLOSED", 409
	case errors.Is(err, ds.ErrSequenceConflict):
		r.ErrorCode = "SEQUENCE_CONFLICT"
	case errors.Is(err, ds.ErrConflict):
		r.ErrorCode = "CONFLICT"
	case errors.Is(err, ds.ErrBadRequest) && cmd == "read":
		r.ErrorCode = "INVALID_OFFSET"
	case errors.Is(err, ds.ErrParse):
		r.ErrorCode = "PARSE_ERROR"
	case errors.Is(err, ds.ErrInvalidArgument):
		r.ErrorCode = "INVALID_ARGUMENT"
	case errors.Is(err, ds.ErrNetwork):
		r.ErrorCode = "NETWORK_ERROR"
		if errors.Is(err, context.DeadlineExceeded) {
			r.ErrorCode = "TIMEOUT"
		}
	case r.Status != 0:
		r.ErrorCode = "UNEXPECTED_STATUS"
	}
	return r
}
