package durablestreams

import (
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/pipeline"
)

// Chunk is the record of one response (or one SSE batch) a [Producer] read. It is the one
// place the facts of that read are kept: every message read from it points to it
// (pipeline.Metadata.Source; read it with [ChunkOf]), and so do the producer's tracked
// commit marks. A Chunk is shared by many messages and goroutines: its methods are safe for
// concurrent use, and it must not be copied.
type Chunk struct {
	stream  string // the stream's path: pipeline.Metadata.Stream
	url     string // the stream's URL, without credentials or query
	first   int64  // the position of the response's first message (the one at its start offset)
	fetched time.Time
	info    atomic.Pointer[dsclient.ChunkInfo]
	succ    atomic.Pointer[Chunk] // the chunk read after this one, for Stats
}

// ChunkOf returns the record of the read a [Producer] made a message from, or nil when the
// message did not come from a Producer.
func ChunkOf(md pipeline.Metadata) *Chunk {
	switch src := md.Source.(type) {
	case *Chunk:
		return src
	case *fill:
		return src.chunk
	}
	return nil
}

// Stream returns the stream's path, as in the messages' pipeline.Metadata.Stream.
func (c *Chunk) Stream() string { return c.stream }

// URL returns the stream's URL, without credentials or query parameters.
func (c *Chunk) URL() string { return c.url }

// Info returns the read's metadata: the offset it was made from, the offset after it, the
// server's cursor, up-to-date and closed. While the producer is still reading the response,
// NextOffset, UpToDate and Closed are those the server first sent; once the response is read
// to its end they are final (a body that was cut and resumed may reach further than the first
// response said).
func (c *Chunk) Info() dsclient.ChunkInfo { return *c.info.Load() }

// First returns the position of the first message of the response: the message at
// Info().StartOffset. A message's index in the response is its Position minus First.
func (c *Chunk) First() int64 { return c.first }

// Fetched returns when the response arrived.
func (c *Chunk) Fetched() time.Time { return c.fetched }

// mark is a commit mark of the producer's tracker: where the committed position stands once
// every message tracked before it is done. c is the chunk the mark lies in (nil for the
// start position); end reports that the mark is after the whole of c.
type mark struct {
	pos ack.Position
	c   *Chunk
	end bool
}

// inside returns the mark after the first n messages of c (counted from its start offset).
func inside(c *Chunk, start dsclient.Offset, n int64) mark {
	return mark{pos: ack.Position{Offset: string(start), Skip: n, Seq: c.first + n}, c: c}
}

// after returns the mark after the whole of c, which held n messages and ended at next.
func after(c *Chunk, next dsclient.Offset, n int64) mark {
	return mark{pos: ack.Position{Offset: string(next), Seq: c.first + n}, c: c, end: true}
}
