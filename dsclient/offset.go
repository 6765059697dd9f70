package dsclient

import "github.com/sluice-go/sluice/internal/protocol"

// Offset is a position in a stream: an opaque token handed out by the server (in
// Stream-Next-Offset headers and SSE control events), or one of the two sentinels
// [Beginning] and [Now].
//
// The client never parses or builds offsets; it sends back what the server returned. It
// compares them only as the protocol allows (section 8: tokens of one stream sort
// lexicographically in stream order), to refuse a server that hands back an offset lower
// than the one asked for ([ErrOffsetRegressed]); sentinels are never compared. Offsets are
// always URL-encoded when sent. The empty Offset means "not set": where an option takes an
// Offset, the empty value selects that option's documented default.
type Offset string

const (
	// Beginning is the sentinel offset "-1": read from the start of the stream.
	Beginning Offset = protocol.OffsetBeginning
	// Now is the sentinel offset "now": skip existing data and read from the current tail.
	Now Offset = protocol.OffsetNow
)

// String returns the offset token.
func (o Offset) String() string { return string(o) }

// IsSentinel reports whether o is [Beginning] or [Now]: a request, not a position.
func (o Offset) IsSentinel() bool { return o == Beginning || o == Now }
