package dsclient

import (
	"fmt"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"
)

// WriterOptions configures a [Writer]. The zero value of every field but ID means its
// documented default, so WriterOptions{ID: "orders-writer"} is a complete configuration;
// [DefaultWriterOptions] returns the same configuration with the defaults written out.
type WriterOptions struct {
	// ID identifies the writer (the protocol's Producer-Id). Required; at most one live
	// Writer per ID and stream: a second one fences the first (see EpochPolicy).
	ID string
	// Epoch is the epoch the writer starts at, in [0, 2^53-1]. With [EpochClaim] the writer
	// starts at the larger of Epoch and the clock (Unix milliseconds); with [EpochFixed] at
	// Epoch exactly. Default: 0.
	Epoch int64
	// EpochPolicy says how the writer chooses its epoch and what it does when the server
	// already holds another lifetime's state for ID. Default: [EpochClaim], safe across
	// process restarts with nothing stored by the caller.
	EpochPolicy EpochPolicy
	// AutoClaim, when the writer is fenced after its epoch was established (a stale-epoch
	// rejection: another writer with the same ID started since), takes the ID back with the
	// server's epoch + 1 and sends the rejected batches again, fencing the other writer in
	// turn. For a writer that must never stop; two such writers with one ID take turns.
	// Default: false, a fenced writer fails with [ErrStaleEpoch].
	AutoClaim bool
	// MaxBatchBytes closes a batch when its body reaches this size; an item larger than this
	// is sent alone. Must be >= 0. Default (0): 1 MiB.
	MaxBatchBytes int
	// MaxBatchItems closes a batch when it holds this many items. Must be >= 0. Default (0):
	// 10000.
	MaxBatchItems int
	// Linger is how long a batch waits for more items before it is sent (items also
	// accumulate while MaxInFlight batches are in flight). Default (0): 5ms. A negative
	// value sends a batch as soon as a request slot is free.
	Linger time.Duration
	// MaxInFlight is how many batches may be in flight at once. Must be >= 0. Default (0): 5.
	MaxInFlight int
	// MaxBufferedBytes bounds the bytes accepted but not yet stored; beyond it
	// [Writer.Append] waits. Must be >= 0. Default (0): 16 MiB.
	MaxBufferedBytes int
	// ContentType of the stream; application/json makes each appended item one JSON message.
	// Default: the handle's content type, else application/octet-stream.
	ContentType string
	// OnError is called (from a writer goroutine, once) when a batch fails for good; its
	// items are lost and the writer stops accepting appends. It must not call Close, which
	// waits for it. Default: none (the error is returned by the next Append, Flush or Close).
	OnError func(error)
}

// EpochPolicy says how a [Writer] chooses its epoch (protocol section 5.2.1) and what it does
// when the server already holds state for its ID from another lifetime: a process that ran
// before with the same ID, or one that still runs.
type EpochPolicy int

const (
	// EpochClaim (the default) makes every Writer a new lifetime of its ID that claims the ID
	// at start, so that a restarted process loses nothing although it stored no epoch:
	//
	//   - The writer starts at an epoch from the clock (Unix milliseconds, or
	//     [WriterOptions.Epoch] if larger), above the epochs of the lifetimes before it
	//     whenever the clock moved forward since they started.
	//   - Its first batch is sent alone. If the server answers that the epoch is stale (the
	//     clock went back, or a writer with the same ID used a larger epoch), the writer
	//     moves to the server's epoch + 1; if it answers that the batch is a duplicate
	//     although this writer never sent it before, another lifetime holds this very epoch,
	//     and the writer moves one above. Either way the batch is sent again in the new
	//     epoch: another lifetime's state never counts as this writer's data.
	//   - Once a batch is stored the epoch is the writer's, and the protocol's fencing
	//     applies: an older lifetime that still runs is rejected at its next batch with
	//     [ErrStaleEpoch] and stops; lifetimes never interleave within an epoch.
	//   - If the server forgets the writer's state (a sequence gap that no batch in flight
	//     explains: a server restored without its producer state), the writer moves to a new
	//     epoch and sends its unstored batches again; a batch the server stored just before it
	//     lost that state may then be stored twice (the protocol's "at least once across
	//     server crashes" for stores that are not atomic).
	//
	// Safe with any number of restarts and no stored state; not for two live writers that
	// share an ID (the newer fences the older).
	EpochClaim EpochPolicy = iota
	// EpochFixed uses [WriterOptions.Epoch] as given, the protocol's flow for a writer that
	// stores its epoch and bumps it on every restart: a stale epoch fails the writer with
	// [ErrStaleEpoch] (unless AutoClaim), and a batch the server holds from another lifetime
	// in the same epoch (the epoch was not bumped) fails it with [ErrEpochInUse], naming the
	// ID, epoch and sequence, rather than being counted as stored.
	EpochFixed
)

// String returns the policy's name.
func (p EpochPolicy) String() string {
	switch p {
	case EpochClaim:
		return "claim"
	case EpochFixed:
		return "fixed"
	}
	return fmt.Sprintf("EpochPolicy(%d)", int(p))
}

// The writer's defaults.
const (
	defaultMaxBatchBytes    = 1 << 20
	defaultMaxBatchItems    = 10000
	defaultLinger           = 5 * time.Millisecond
	defaultMaxInFlight      = 5
	defaultMaxBufferedBytes = 16 << 20
)

// maxProducerNumber is the largest epoch or sequence number the protocol allows (2^53-1, for
// JavaScript clients and servers).
const maxProducerNumber = 1<<53 - 1

// DefaultWriterOptions returns the options of a writer with the given ID, every default
// written out: [EpochClaim], 1 MiB or 10000 items per batch, 5ms linger, 5 batches in
// flight, 16 MiB buffered.
func DefaultWriterOptions(id string) WriterOptions {
	return WriterOptions{ID: id, MaxBatchBytes: defaultMaxBatchBytes, MaxBatchItems: defaultMaxBatchItems,
		Linger: defaultLinger, MaxInFlight: defaultMaxInFlight, MaxBufferedBytes: defaultMaxBufferedBytes}
}

// Validate reports every invalid field at once, each by its Go field path
// (WriterOptions.MaxBatchBytes), in an error that matches [ErrInvalidArgument] with
// [errors.Is]. Zero values are valid: they mean the defaults.
func (o WriterOptions) Validate() error {
	c := optcheck.New("dsclient", ErrInvalidArgument)
	switch {
	case o.ID == "":
		c.Bad("WriterOptions.ID", "must not be empty")
	case !validHeaderValue(o.ID):
		c.Bad("WriterOptions.ID", "must be a valid HTTP header value (no control characters), got %q", o.ID)
	}
	if o.Epoch < 0 || o.Epoch > maxProducerNumber {
		c.Bad("WriterOptions.Epoch", "must be in [0, 2^53-1], got %d", o.Epoch)
	}
	if o.EpochPolicy != EpochClaim && o.EpochPolicy != EpochFixed {
		c.Bad("WriterOptions.EpochPolicy", "must be EpochClaim or EpochFixed, got %d", int(o.EpochPolicy))
	}
	if o.MaxBatchBytes < 0 {
		c.Bad("WriterOptions.MaxBatchBytes", "must be >= 0 (0 means 1 MiB), got %d", o.MaxBatchBytes)
	}
	if o.MaxBatchItems < 0 {
		c.Bad("WriterOptions.MaxBatchItems", "must be >= 0 (0 means 10000), got %d", o.MaxBatchItems)
	}
	if o.MaxInFlight < 0 {
		c.Bad("WriterOptions.MaxInFlight", "must be >= 0 (0 means 5), got %d", o.MaxInFlight)
	}
	if o.MaxBufferedBytes < 0 {
		c.Bad("WriterOptions.MaxBufferedBytes", "must be >= 0 (0 means 16 MiB), got %d", o.MaxBufferedBytes)
	}
	return c.Err()
}

// withDefaults returns o with every zero field replaced by its default and a negative Linger
// by 0 (no linger).
func (o WriterOptions) withDefaults() WriterOptions {
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = defaultMaxBatchBytes
	}
	if o.MaxBatchItems == 0 {
		o.MaxBatchItems = defaultMaxBatchItems
	}
	switch {
	case o.Linger == 0:
		o.Linger = defaultLinger
	case o.Linger < 0:
		o.Linger = 0
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = defaultMaxInFlight
	}
	if o.MaxBufferedBytes == 0 {
		o.MaxBufferedBytes = defaultMaxBufferedBytes
	}
	return o
}

// validHeaderValue reports whether v can be sent as an HTTP header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
