package durablestreams

import (
	"time"

	"github.com/sluice-go/sluice/ack"

	"github.com/sluice-go/sluice/dsclient"
)

// ProducerObserver receives a [Producer]'s events: chunks read, committed offset advances,
// checkpoint saves and 410 resumes. The metrics package implements it with Prometheus
// collectors. Embed [NopProducerObserver] to implement only some methods.
//
// Methods are called synchronously from the producer's goroutines (the one running
// Produce, the checkpoint saver's, or Close's), so they must be safe for concurrent use and
// fast (no I/O).
type ProducerObserver interface {
	// ProducerChunk is called when every message of a response (or SSE batch) has been
	// handed to the pipeline (or, for an empty one, when it was read).
	ProducerChunk(ProducerChunkEvent)
	// ProducerMessages is called once per Produce call that handed messages to the pipeline.
	ProducerMessages(ProducerMessagesEvent)
	// Committed is called when a changed committed offset has been saved (or, without a
	// checkpoint store, observed); advances are coalesced by the checkpoint interval.
	Committed(CommitEvent)
	// CheckpointSaved is called after each save to the checkpoint store, failed or not.
	CheckpointSaved(CheckpointEvent)
	// Gone is called when a 410 made the producer resume from the earliest offset.
	Gone(GoneEvent)
}

// ProducerChunkEvent describes a chunk a [Producer] finished handing out.
type ProducerChunkEvent struct {
	// URL is the stream's URL.
	URL string
	// Start and Next are the offsets the chunk was read from and the offset after it.
	Start, Next dsclient.Offset
	// Messages is how many messages the chunk gave (failed decodes included), and
	// DecodeFailures how many of them failed to decode.
	Messages, DecodeFailures int
	// UpToDate and Closed are the chunk's: it reached the tail; the stream is closed.
	UpToDate, Closed bool
}

// ProducerMessagesEvent describes the messages one Produce call handed to the pipeline.
type ProducerMessagesEvent struct {
	// URL is the stream's URL.
	URL string
	// Messages is how many messages were handed out (failed decodes included), and
	// DecodeFailures how many of them failed to decode.
	Messages, DecodeFailures int
}

// CommitEvent reports the committed position after it advanced.
type CommitEvent struct {
	// URL is the stream's URL and Key the checkpoint key.
	URL, Key string
	// Position is the committed position.
	Position ack.Position
}

// CheckpointEvent reports a save to the checkpoint store.
type CheckpointEvent struct {
	// URL is the stream's URL and Key the checkpoint key.
	URL, Key string
	// Position is the position saved (or not, when Err is set).
	Position ack.Position
	// Duration is how long the save took.
	Duration time.Duration
	// Err is the store's error, or nil.
	Err error
}

// GoneEvent reports a resume from the earliest retained offset after a 410.
type GoneEvent struct {
	// URL is the stream's URL.
	URL string
	// From is the offset the read was at; ResumeAt the offset it resumed from.
	From, ResumeAt dsclient.Offset
}

// NopProducerObserver is a [ProducerObserver] that ignores every event; embed it to
// implement only some methods.
type NopProducerObserver struct{}

// ProducerChunk does nothing.
func (NopProducerObserver) ProducerChunk(ProducerChunkEvent) {}

// ProducerMessages does nothing.
func (NopProducerObserver) ProducerMessages(ProducerMessagesEvent) {}

// Committed does nothing.
func (NopProducerObserver) Committed(CommitEvent) {}

// CheckpointSaved does nothing.
func (NopProducerObserver) CheckpointSaved(CheckpointEvent) {}

// Gone does nothing.
func (NopProducerObserver) Gone(GoneEvent) {}
