package ack

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-go/sluice/internal/protocol"
)

// Position is a place in one source's sequence of messages, precise to the message: the
// committed position of a pipeline, saved as a checkpoint, and where a restart resumes.
//
// A reader resumes at a Position by reading from Offset and skipping the first Skip
// messages it gets: they are done. The messages after an offset are the same on every read,
// so a position may point inside what one response returned. The zero value is not a
// valid position; see [ParsePosition] for the rules.
//
// # Encoding
//
// [Position.String] is the checkpoint encoding, and [ParsePosition] reads it back. A
// position with Skip 0 and Seq -1 encodes as its bare Offset, exactly what versions of
// Sluice before positions saved, so their checkpoints are positions too. Any other
// position encodes as
//
//	<Offset>,<Skip>,<Seq>
//
// with both numbers in decimal, without sign or leading zeros (Seq may be -1): for example
// "0000000000000000_0000000000000051,250,1250". Offsets never contain a comma, so the two
// forms cannot be confused, and every valid position has exactly one encoding.
//
// # Order
//
// [Position.Compare] orders the positions of one source: by Offset, then by Skip. Real
// offsets compare byte-wise, as the Durable Streams protocol orders them; "-1" comes
// before every real offset. Seq does not take part: two positions with the same Offset
// and Skip are the same place.
//
// "now" is where a reader starts, not a place: it has no order against real offsets. So
// that Compare is still a total order, and so that a guard that refuses to move backwards
// never holds a real position back behind it, Compare puts "now" before every other
// position, "-1" included. A checkpoint store does not rely on that alone: a saved "-1" or
// "now" is always replaceable (see [Supersedes]).
type Position struct {
	// Offset is the source's opaque offset where a read starts. For a durable stream:
	// an offset the server returned, or one of the sentinels "-1" (the beginning) and
	// "now" (the tail when the read begins). It is not empty and contains no ','.
	Offset string
	// Skip is how many messages after Offset are done: a reader starting at Offset skips
	// them. Zero or more; zero at "now".
	Skip int64
	// Seq is the stable number of the first message that is not done: the number of
	// messages before it in the stream. The first message after Offset thus has number
	// Seq-Skip. -1 when unknown, for example after a start at "now" or from a checkpoint
	// saved without it; otherwise at least Skip.
	Seq int64
}

// PositionError is the error of [ParsePosition]: a checkpoint value that is not the
// encoding of a valid [Position], by the rules documented there.
type PositionError struct {
	// Value is the value as given.
	Value string
	// Reason says what is wrong with it.
	Reason string
}

// Error names the value and the reason.
func (e *PositionError) Error() string {
	return fmt.Sprintf("ack: bad checkpoint position %q: %s", e.Value, e.Reason)
}

// String returns the position's checkpoint encoding, described on [Position]: the bare
// Offset when Skip is 0 and Seq is -1, "Offset,Skip,Seq" otherwise. It does not check the
// position: the encoding of a position that breaks the rules of [ParsePosition] does not
// parse back. It does not block.
func (p Position) String() string {
	if p.Skip == 0 && p.Seq == -1 {
		return p.Offset
	}
	b := make([]byte, 0, len(p.Offset)+24)
	b = append(b, p.Offset...)
	b = append(b, ',')
	b = strconv.AppendInt(b, p.Skip, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, p.Seq, 10)
	return string(b)
}

// ParsePosition reads a checkpoint value in either encoding described on [Position]. A value
// without a comma is a bare offset: Position{Offset: s, Skip: 0, Seq: -1}, whatever its
// characters (offsets are opaque). A value with a comma must be "Offset,Skip,Seq" in its
// one canonical form, and the position must be valid:
//   - Offset is not empty;
//   - Skip is 0 or more, Seq is -1 or at least Skip;
//   - at "now", Skip is 0 and Seq is -1 (it is no place to count from);
//   - a position with Skip 0 and Seq -1 is written as its bare offset.
//
// Anything else is reported as a *[PositionError] naming the value. ParsePosition does not
// block and allocates only for an error.
func ParsePosition(s string) (Position, error) {
	off, rest, found := strings.Cut(s, ",")
	if !found {
		if s == "" {
			return Position{}, &PositionError{Value: s, Reason: "empty"}
		}
		return Position{Offset: s, Seq: -1}, nil
	}
	skipText, seqText, found := strings.Cut(rest, ",")
	if !found {
		return Position{}, &PositionError{Value: s, Reason: `want "offset,skip,seq" or a bare offset`}
	}
	skip, ok := canonicalInt(skipText)
	if !ok {
		return Position{}, &PositionError{Value: s, Reason: fmt.Sprintf("skip %q is not a decimal integer in canonical form", skipText)}
	}
	seq, ok := canonicalInt(seqText)
	if !ok {
		return Position{}, &PositionError{Value: s, Reason: fmt.Sprintf("seq %q is not a decimal integer in canonical form", seqText)}
	}
	p := Position{Offset: off, Skip: skip, Seq: seq}
	if reason := p.invalid(); reason != "" {
		return Position{}, &PositionError{Value: s, Reason: reason}
	}
	if skip == 0 && seq == -1 {
		return Position{}, &PositionError{Value: s, Reason: "skip 0 and seq -1 are written as the bare offset"}
	}
	return p, nil
}

// invalid returns why p breaks the rules of ParsePosition, or "".
func (p Position) invalid() string {
	switch {
	case p.Offset == "":
		return "empty offset"
	case strings.Contains(p.Offset, ","):
		return "offset contains ','"
	case p.Skip < 0:
		return "negative skip"
	case p.Seq < -1:
		return "seq below -1"
	case p.Seq != -1 && p.Seq < p.Skip:
		return "seq below skip"
	case p.Offset == protocol.OffsetNow && (p.Skip != 0 || p.Seq != -1):
		return `"now" takes no skip or seq`
	}
	return ""
}

// canonicalInt parses a decimal int64 written as strconv.FormatInt writes it.
func canonicalInt(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(v, 10) != s {
		return 0, false
	}
	return v, true
}

// Compare returns -1, 0 or +1 as p is before, at or after q in the order documented on
// [Position]: "now" first, then "-1", then real offsets byte-wise; within one offset, by
// Skip. Seq is ignored. It is a total order on positions, valid or not, and does not
// allocate. It has the signature a [SaverOptions] Compare wants: ack.Position.Compare.
func (p Position) Compare(q Position) int {
	if c := offsetRank(p.Offset) - offsetRank(q.Offset); c != 0 {
		return sign(c)
	}
	if c := strings.Compare(p.Offset, q.Offset); c != 0 {
		return c
	}
	switch {
	case p.Skip < q.Skip:
		return -1
	case p.Skip > q.Skip:
		return 1
	}
	return 0
}

// offsetRank is the first key of the order: "now", then "-1", then real offsets.
func offsetRank(o string) int {
	switch o {
	case protocol.OffsetNow:
		return 0
	case protocol.OffsetBeginning:
		return 1
	}
	return 2
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// Supersedes reports whether a checkpoint store may replace the value saved for a key with
// next: the never-backwards rule of [CheckpointStore], which every store applies to every
// Save. It is true, and the Save replaces the saved value, when
//   - either value does not parse as a position ([ParsePosition]): a store keeps strings
//     for any source, and values it cannot order are simply replaced;
//   - saved is a bare sentinel, "-1" or "now" (with Skip 0): a start, not a place reached;
//   - next is not "now", and next is at or after saved ([Position.Compare]).
//
// Otherwise (next is before saved, or next is "now" over a real position) the store
// keeps saved, and the Save succeeds without changing it. Supersedes does not block and
// allocates nothing for valid values.
func Supersedes(next, saved string) bool {
	q, err := ParsePosition(saved)
	if err != nil || q.Skip == 0 && (q.Offset == protocol.OffsetBeginning || q.Offset == protocol.OffsetNow) {
		return true
	}
	p, err := ParsePosition(next)
	if err != nil {
		return true
	}
	return p.Offset != protocol.OffsetNow && p.Compare(q) >= 0
}
