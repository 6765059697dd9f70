package dssink

import (
	"strings"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/optcheck"
	"github.com/sluice-go/sluice/internal/protocol"
	"github.com/sluice-go/sluice/pipeline"
)

// Options configures a [Sink]. Stream, ID and one of Value and Bytes are required; the zero
// value of every other field means its documented default.
type Options[T any] struct {
	// Stream is the output stream. Required. It must exist; the sink never creates it.
	Stream *dsclient.Stream
	// ID names the sink's writers on the output stream: the sink writes under the
	// idempotent-producer ID ID|<source stream>|<batch key> (escaped as in a URL query), one
	// per source stream and batch key. Required. It must stay the same across restarts of
	// the program, and no other sink or writer may use it on the same output stream.
	ID string
	// Value returns the value to append for a message, encoded with encoding/json as one
	// message of the output stream (which must be a JSON stream); a [Many] to append several;
	// or nil to append nothing for the message (it succeeds). An error fails the message as
	// bad data ([pipeline.Permanent]). Exactly one of Value and Bytes is required.
	Value func(m *pipeline.Message[T]) (any, error)
	// Bytes returns the bytes to append for a message, or nil to append nothing for it: for
	// a JSON output stream one JSON value (checked: an invalid value fails the message as
	// bad data), for another content type the bytes as they are (for readers, the items of
	// a request run together). An error fails the message as bad data.
	Bytes func(m *pipeline.Message[T]) ([]byte, error)
	// ContentType is the output stream's content type. Default: application/json with
	// Value; with Bytes, the stream's, asked of the server (HEAD) before the first batch.
	ContentType string
	// MaxRequestBytes is the size at which the sink starts a new append request within a
	// batch. A message's item always goes whole into one request. Must be >= 0. Default (0):
	// 1 MiB.
	MaxRequestBytes int
}

const defaultMaxRequestBytes = 1 << 20

// check validates o, reporting every bad field at once by its Go field path, and returns it
// with the defaults filled in.
func (o Options[T]) check() (Options[T], error) {
	c := optcheck.New("dssink", nil)
	if o.Stream == nil {
		c.Bad("Options.Stream", "required")
	}
	switch {
	case o.ID == "":
		c.Bad("Options.ID", "required")
	case strings.ContainsFunc(o.ID, func(r rune) bool { return r < ' ' || r == 0x7f }):
		c.Bad("Options.ID", "must not contain control characters, got %q", o.ID)
	}
	switch {
	case o.Value == nil && o.Bytes == nil:
		c.Bad("Options.Value", "one of Value and Bytes is required")
	case o.Value != nil && o.Bytes != nil:
		c.Bad("Options.Bytes", "set only one of Value and Bytes")
	case o.Value != nil && o.ContentType != "" && !isJSON(o.ContentType):
		c.Bad("Options.ContentType", "Value appends JSON: the output stream must be application/json, got %q", o.ContentType)
	}
	if o.MaxRequestBytes < 0 {
		c.Bad("Options.MaxRequestBytes", "must be >= 0 (0 means 1 MiB), got %d", o.MaxRequestBytes)
	}
	if err := c.Err(); err != nil {
		return o, err
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = defaultMaxRequestBytes
	}
	if o.Value != nil && o.ContentType == "" {
		o.ContentType = protocol.ContentTypeJSON
	}
	return o, nil
}

// isJSON reports whether a content type is application/json, parameters ignored.
func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), protocol.ContentTypeJSON)
}
