package durablestreams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sluice-go/sluice/dsclient"

	"github.com/sluice-go/sluice/pipeline"
)

// DeadLetterRecord is what [DeadLetter] appends to the dead-letter stream for each failed
// message: one JSON value.
type DeadLetterRecord struct {
	// Data is the message's data, as JSON (encoding/json of the pipeline's data type); for a
	// message that failed to decode, the item's bytes when known (as a JSON string when
	// they are not JSON).
	Data json.RawMessage `json:"data"`
	// Error is the text of the message's error.
	Error string `json:"error"`
	// Stream is the stream the message came from (pipeline.Metadata.Stream: for a
	// [Producer], the stream's path), and Position its position there: together they
	// identify the message, the same on every delivery, so that a reader of the dead-letter
	// stream can drop the duplicates an at-least-once append may leave.
	Stream   string `json:"stream,omitempty"`
	Position int64  `json:"position"`
	// Offset is the offset of the read the message came from, when a [Producer] made it:
	// where to look for it in the source stream.
	Offset string `json:"offset,omitempty"`
	// Attempt is how many times the message had been handled when it failed (1 without
	// retries).
	Attempt int `json:"attempt"`
	// Batcher names the batcher whose copy failed, for a message sent to several batchers
	// (pipeline.Message.SetBatchers); empty when it failed before any batcher.
	Batcher string `json:"batcher,omitempty"`
}

// DeadLetter is a [pipeline.FailureHandler] that appends every message that failed as bad
// data to a dead-letter durable stream through an idempotent dsclient.Writer, and returns
// only once the appends are acknowledged by the server: the pipeline acknowledges a failed
// message (and lets the committed position pass it) only after its dead letter is stored. If
// an append fails for good, HandleFailed returns the error and the pipeline halts without
// committing past the message (see [pipeline.FailureHandler]).
//
// Only bad data is dead-lettered: a message whose error is permanent (pipeline.IsPermanent:
// a [DecodeError], an error a handler marked with pipeline.Permanent, a panic). Under the
// default failure policy (pipeline.RetryTransient) nothing else reaches a failure handler.
// Under a policy that hands it transient failures too (an outage of a sink), HandleFailed
// writes nothing and returns an error naming the first such message, so that the pipeline
// halts without committing past it rather than dead-letter a message that was never bad.
//
// Records are appended at least once: a retried append after a lost response, or a redelivery
// of the failed message after a crash, may store a record twice. A reader drops duplicates by
// (Stream, Position), which every record carries. The Writer is safe across restarts with
// its default options (it claims a fresh epoch), so a fixed writer ID is fine.
//
// Set it as the pipeline's Failure.Handler. It is safe for concurrent use. The Writer
// belongs to the caller, who closes it after the pipeline's run.
type DeadLetter[T any] struct {
	w *dsclient.Writer
}

// NewDeadLetter returns a dead-letter failure handler appending to w's stream, which must be
// a JSON stream written as JSON: make w from a handle with WithContentType("application/json")
// or with WriterOptions.ContentType set to it.
func NewDeadLetter[T any](w *dsclient.Writer) *DeadLetter[T] { return &DeadLetter[T]{w: w} }

// HandleFailed appends a [DeadLetterRecord] for each message and waits until the server has
// stored them all (Writer.Flush), or ctx ends. It blocks for the round trips.
func (d *DeadLetter[T]) HandleFailed(ctx context.Context, msgs []pipeline.Message[T]) error {
	if d == nil || d.w == nil {
		return errors.New("durablestreams: DeadLetter has no Writer")
	}
	for i := range msgs {
		if err := msgs[i].Err(); !pipeline.IsPermanent(err) {
			return fmt.Errorf("durablestreams: DeadLetter: message at position %d of %q failed transiently, not as bad data; not dead-lettered: %w",
				msgs[i].Metadata.Position, msgs[i].Metadata.Stream, err)
		}
	}
	for i := range msgs {
		m := &msgs[i]
		rec := DeadLetterRecord{
			Stream:   m.Metadata.Stream,
			Position: m.Metadata.Position,
			Attempt:  m.Attempt(),
			Batcher:  m.Batcher(),
		}
		if err := m.Err(); err != nil {
			rec.Error = err.Error()
		}
		if c := ChunkOf(m.Metadata); c != nil {
			rec.Offset = string(c.Info().StartOffset)
		}
		var data []byte
		var err error
		var de *DecodeError
		if errors.As(m.Err(), &de) && de.Raw != nil {
			// The data never decoded: keep the item as it was, JSON or not.
			if json.Valid(de.Raw) {
				data = de.Raw
			} else {
				data, err = json.Marshal(string(de.Raw))
			}
		} else {
			data, err = json.Marshal(m.Data)
		}
		if err != nil {
			data, _ = json.Marshal(fmt.Sprintf("%v", m.Data)) // not JSON-encodable: its text
		}
		rec.Data = data
		if err := d.w.AppendJSON(ctx, rec); err != nil {
			return fmt.Errorf("durablestreams: dead-letter append: %w", err)
		}
	}
	if err := d.w.Flush(ctx); err != nil {
		return fmt.Errorf("durablestreams: dead-letter flush: %w", err)
	}
	return nil
}
