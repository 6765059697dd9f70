package dstest

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Options configures a [Handler] or a [Server]. The zero value serves the protocol the way the
// reference server does by default.
type Options struct {
	// Prefix is the URL path under which streams live; a stream's name is the rest of the path.
	// It must start and end with "/". Default: "/v1/stream/".
	Prefix string

	// LongPollTimeout is how long a long-poll read waits for data before answering 204, and how
	// often an idle SSE response sends a keep-alive control event. Default: 30s.
	LongPollTimeout time.Duration

	// SSELifetime is how long the server keeps one SSE response open before ending it after a
	// control event, so that the client reconnects from the offset that event carried.
	// Default: 0, no limit (the response lasts until the client leaves or the stream closes).
	SSELifetime time.Duration

	// MaxChunkBytes is the most stored bytes that one read returns: a catch-up or long-poll
	// body, or one SSE data event. A read always returns at least one append's worth, however
	// large. For a JSON stream the stored bytes are the compact values with a comma after
	// each. Default: 0, no limit — a catch-up read returns the whole rest of the stream, as the
	// reference server does.
	MaxChunkBytes int

	// MaxBodyBytes is the largest request body accepted; a larger one gets 413.
	// Default: 0, meaning 1 GiB (the most one append can hold).
	MaxBodyBytes int64

	// Compression gzips read responses of 1 KiB or more for clients that accept gzip, as the
	// reference server does. Default: false (responses go out as stored).
	Compression bool

	// CursorInterval is the length of the time intervals that cursors count. Default: 20s.
	CursorInterval time.Duration

	// Logger, when set, receives one Info record per request (method, path, status, bytes,
	// duration). Default: nil, no logging.
	Logger *slog.Logger
}

const (
	defaultPrefix          = "/v1/stream/"
	defaultLongPollTimeout = 30 * time.Second
	defaultCursorInterval  = 20 * time.Second
	maxRecordBytes         = 1 << 30
)

// withDefaults validates o and returns it with every zero field set to its default. The
// error lists every problem, each naming its field.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("dstest: Options.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if o.Prefix == "" {
		o.Prefix = defaultPrefix
	} else if !strings.HasPrefix(o.Prefix, "/") || !strings.HasSuffix(o.Prefix, "/") {
		bad("Prefix", "must start and end with \"/\", got %q", o.Prefix)
	}
	if o.LongPollTimeout < 0 {
		bad("LongPollTimeout", "must be >= 0, got %v", o.LongPollTimeout)
	} else if o.LongPollTimeout == 0 {
		o.LongPollTimeout = defaultLongPollTimeout
	}
	if o.SSELifetime < 0 {
		bad("SSELifetime", "must be >= 0, got %v", o.SSELifetime)
	}
	if o.MaxChunkBytes < 0 {
		bad("MaxChunkBytes", "must be >= 0, got %d", o.MaxChunkBytes)
	}
	if o.MaxBodyBytes < 0 || o.MaxBodyBytes > maxRecordBytes {
		bad("MaxBodyBytes", "must be between 0 and %d, got %d", maxRecordBytes, o.MaxBodyBytes)
	} else if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = maxRecordBytes
	}
	if o.CursorInterval < 0 || (o.CursorInterval > 0 && o.CursorInterval < time.Second) {
		bad("CursorInterval", "must be 0 or at least 1s, got %v", o.CursorInterval)
	} else if o.CursorInterval == 0 {
		o.CursorInterval = defaultCursorInterval
	}
	return o, errors.Join(errs...)
}
