package dsclient

import "time"

// Observer receives the client's events: HTTP requests, retries, reconnects, chunks read,
// consumer batches and writer batches. The metrics package implements it to export
// Prometheus collectors; tests implement it to count. Embed [NopObserver] to implement only
// some methods.
//
// Methods are called synchronously on the goroutine doing the work, possibly from several
// goroutines at once, so implementations must be safe for concurrent use and fast (no I/O).
// When no observer is set, the client builds no events and allocates nothing for them.
//
// Every URL in an event is the redacted stream URL ([Stream.URL]): no credentials, no query.
// Optional events are delivered to observers that also implement [OffsetObserver].
type Observer interface {
	// RequestStart is called before each HTTP attempt.
	RequestStart(RequestStartEvent)
	// RequestDone is called when an attempt has its response headers, or failed.
	RequestDone(RequestDoneEvent)
	// Retry is called before the client sleeps and sends a request again.
	Retry(RetryEvent)
	// Reconnect is called when a read reconnects: an SSE connection ended, broke or went
	// silent, or a chunk is asked for again (its body was cut or stalled, or it was
	// malformed under [ParseRetry]).
	Reconnect(ReconnectEvent)
	// Chunk is called when a reader finishes a chunk (its items were all read, or it was
	// discarded).
	Chunk(ChunkEvent)
	// ConsumerBatch is called after a [Consumer]'s handler returns.
	ConsumerBatch(ConsumerBatchEvent)
	// WriterBatch is called when a [Writer] batch is acknowledged, found duplicate, or fails.
	WriterBatch(WriterBatchEvent)
}

// NopObserver implements [Observer] with methods that do nothing; embed it to implement only
// the events you need.
type NopObserver struct{}

// RequestStart does nothing.
func (NopObserver) RequestStart(RequestStartEvent) {}

// RequestDone does nothing.
func (NopObserver) RequestDone(RequestDoneEvent) {}

// Retry does nothing.
func (NopObserver) Retry(RetryEvent) {}

// Reconnect does nothing.
func (NopObserver) Reconnect(ReconnectEvent) {}

// Chunk does nothing.
func (NopObserver) Chunk(ChunkEvent) {}

// ConsumerBatch does nothing.
func (NopObserver) ConsumerBatch(ConsumerBatchEvent) {}

// WriterBatch does nothing.
func (NopObserver) WriterBatch(WriterBatchEvent) {}

// RequestStartEvent describes an HTTP attempt about to be sent.
type RequestStartEvent struct {
	Op      Op
	Method  string
	URL     string // stream URL, without query
	Attempt int    // 1 for the first attempt
}

// RequestDoneEvent describes a finished HTTP attempt. For reads, Duration runs until the
// response headers arrived; the body is streamed afterwards.
type RequestDoneEvent struct {
	Op       Op
	Method   string
	URL      string
	Attempt  int
	Status   int // 0 when no response was received
	Duration time.Duration
	Err      error // the attempt's error, nil on a 2xx
}

// RetryEvent describes a retry about to happen.
type RetryEvent struct {
	Op      Op
	URL     string
	Attempt int // the attempt that will be sent, 2 for the first retry
	Delay   time.Duration
	Err     error // why the previous attempt failed
}

// ReconnectEvent describes a read reconnecting.
type ReconnectEvent struct {
	URL    string
	Live   LiveMode
	Offset Offset // the offset the read resumes from
	Err    error  // why the connection ended; nil for an orderly end of an SSE response
}

// OffsetObserver is an optional interface of an [Observer]: an observer that implements it
// also hears of responses a read refused to follow because their next offset went backwards
// or did not advance ([ErrOffsetRegressed]), so that metrics can count them.
type OffsetObserver interface {
	// OffsetRejected is called for each refused response or SSE control event, before the
	// read backs off and asks again from the offset it holds.
	OffsetRejected(OffsetRejectedEvent)
}

// OffsetRejectedEvent describes a response whose next offset a read refused.
type OffsetRejectedEvent struct {
	URL       string
	Live      LiveMode // the mode of the request: LiveOff for plain requests
	Requested Offset   // the offset the read asked for (and still holds)
	Returned  Offset   // the next offset the server handed back
	WithData  bool     // the response carried data
}

// ChunkEvent describes a chunk a reader finished.
type ChunkEvent struct {
	URL     string
	Info    ChunkInfo
	Items   int   // JSON items read from the chunk (0 for byte streams)
	Bytes   int64 // body bytes read from the chunk (after decompression)
	Resumed int   // how many times the chunk was asked for again after a failure
}

// ConsumerBatchEvent describes one call of a [Consumer]'s handler.
type ConsumerBatchEvent struct {
	URL      string
	Info     ChunkInfo
	Items    int
	Bytes    int
	Duration time.Duration
	Err      error // the handler's error
}

// WriterBatchEvent describes one [Writer] batch (one POST).
type WriterBatchEvent struct {
	URL       string
	WriterID  string
	Epoch     int64
	Seq       int64
	Items     int
	Bytes     int
	Duration  time.Duration // from the first send to the outcome, retries included
	Duplicate bool          // the server had already stored this batch (204)
	Err       error
}
