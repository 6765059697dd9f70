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
}

// DeadLetter is a [pipeline.FailureHandler] that appends every failed message to a
// dead-letter durable stream through an idempotent [Writer], and returns only once the
// appends are acknowledged by the server: the pipeline acknowledges a failed message (and
// lets the committed offset pass it) only after its dead letter is stored. If an append
// fails for good, HandleFailed returns the error and the pipeline halts without committing
// past the message (see [pipeline.FailureHandler]).
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
		m := &msgs[i]
		rec := DeadLetterRecord{
			Stream:   m.Metadata.Stream,
			Position: m.Metadata.Position,
			Attempt:  m.Attempt(),
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
