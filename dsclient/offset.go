package dsclient

import "github.com/sluice-go/sluice/internal/protocol"

// Offset is a position in a stream: an opaque token handed out by the server (in
// Stream-Next-Offset headers and SSE control events), or one of the two sentinels
// [Beginning] and [Now].
//
// The client never parses, builds or compares offsets; it only sends back what the server
// returned. Offsets are always URL-encoded when sent. The empty Offset means "not set": where
// an option takes an Offset, the empty value selects that option's documented default.
type Offset string

const (
	// Beginning is the sentinel offset "-1": read from the start of the stream.
	Beginning Offset = protocol.OffsetBeginning
	// Now is the sentinel offset "now": skip existing data and read from the current tail.
	Now Offset = protocol.OffsetNow
)

// String returns the offset token.
func (o Offset) String() string { return string(o) }
