// Package ack holds Sluice's acknowledgement contract, the offset tracker and checkpoint stores.
//
// Acking works in three layers: a message's [Acknowledger] and [Ref], which the pipeline
// calls when the message ends; the [Tracker], which turns out-of-order completions into a
// committed offset (no I/O, no clock); and a [CheckpointStore], which saves that offset
// (I/O), fed by a [Saver]. The package imports nothing of the pipeline, so sources,
// acknowledgers and stores can be written and tested on their own.
//
// # Acknowledgement
//
// Every message a producer emits carries an [Acknowledger] and a [Ref]. When the message ends,
// successfully or not, the pipeline hands its Ref to its Acknowledger, grouped with the other
// messages of the same batch.
//
// # Committed offsets
//
// A [Tracker] follows the chunks a producer fetched, in fetch order, each with its message
// count and the opaque offset after it. Messages are marked done in any order, from any
// goroutine; the committed offset is the offset after the longest prefix of chunks whose
// every message is done. It never passes a message that is not done, whatever order the
// acks arrive in, and never moves backwards. This is stricter than committing the highest
// offset marked: that would commit messages that are still being processed.
//
// A producer that knows a chunk's size up front tracks it in one call with [Tracker.Track].
// One that decodes a long response as it streams opens the chunk with [Tracker.Open], adds
// messages with [Chunk.Add] as it emits them and seals it with [Chunk.Seal] and the final
// offset when the response ends. An empty sealed chunk, such as a long-poll that only moved
// the offset, commits as soon as everything before it has.
//
// A chunk is whatever run of messages the producer tracks together, and its offset any value
// that says where the run ends. The Durable Streams producer tracks the messages of each
// Produce call as one chunk whose offset is the [Position] after them (the offset its read
// started from, and how many messages after it are done), so its committed position moves
// inside a response as the pipeline finishes its messages, and a crash re-delivers at most
// what was in flight.
//
// The producer stores the *[Chunk] in each message's [Ref.Ptr]; the Tracker is itself an
// [Acknowledger] that marks those chunks done, so the same tracker serves as every message's
// acknowledger. Marking is O(1) and allocation-free; the tracker's lock is taken only when a
// chunk completes.
//
// # Offset walk-through
//
// A stream is read from offset "0" in three fetches: chunk A holds messages a1 a2 and ends
// at offset "2", chunk B holds b1 and ends at "3", chunk C holds c1 c2 and ends at "5".
// Processors and batchers finish them out of order:
//
//	event            done so far            committed   why
//	(start)          -                      "0"         nothing done yet
//	b1 done          b1                     "0"         A is unfinished: B must wait
//	c2 done          b1 c2                  "0"         A still unfinished
//	a2 done          b1 c2 a2               "0"         a1 is not done
//	a1 done          b1 c2 a2 a1            "3"         A and B complete: both commit at once
//	c1 done          all                    "5"         C completes at the head
//
// A restart after "a2 done" resumes at "0" and processes every message again (at least
// once); a restart after "a1 done" resumes at "3" and sees c1 and c2 again, even though c2
// was done: a chunk commits whole or not at all.
//
// If c1 had failed under the Halt failure policy ([Failure.Halt], [Chunk.Halt]), the
// committed offset would stay at "3" for good, so that a restart retries chunk C.
//
// # Bounded memory
//
// With [TrackerOptions.MaxPending] set, [Tracker.Track] and [Chunk.Add] wait, honouring
// their context, while tracking more would leave more messages unfinished than the cap. A
// producer that adds each message before emitting it therefore never holds more than the
// cap, even when one response carries the whole stream.
//
// # Positions
//
// A [Position] is a committed place precise to the message: an Offset where a read starts,
// Skip, how many messages after it are done, and Seq, the stable number of the first message
// not done (the number of messages before it in the stream; -1 when unknown). The messages
// after an offset are the same on every read, so a restart reads from Offset and skips Skip
// messages, and a stop in the middle of one long response re-delivers only what was not done.
//
// Its checkpoint encoding ([Position.String], read by [ParsePosition]) is the bare offset
// when Skip is 0 and Seq is -1, exactly what versions before positions saved, and
// "offset,skip,seq" otherwise; offsets never contain a comma, so old checkpoints read as
// positions and new ones cannot be mistaken for offsets:
//
//	0000000000000000_0000000000000051            an offset, nothing after it done
//	0000000000000000_0000000000000051,250,1250   250 messages after it done; next is number 1250
//
// [Position.Compare] orders the positions of one source: by offset, byte-wise as the Durable
// Streams protocol orders offsets, with "-1" before every real offset, then by Skip. "now",
// where a reader starts, is no place: Compare puts it first so that it never holds a real
// position back.
//
// # Checkpoints
//
// A [CheckpointStore] keeps one value per key, the encoding of the committed position;
// [CheckpointKey] builds the key from the pipeline's name and the source's identity (for a
// durable stream its path, never a URL carrying credentials). [MemoryStore] keeps values in
// memory; [FileStore] keeps one file per key and replaces it atomically (temporary file,
// sync, rename, directory sync). Stores backed by a database live in subpackages; package
// [github.com/sluice-go/sluice/ack/acktest] checks any store against the contract.
//
// Checkpoints never move backwards: every store ignores, without error, a Save whose position
// is before the saved one ([Supersedes]), so a late save from a stale process changes nothing.
// A saved "-1" or "now" is always replaceable and never replaces a real position; values that
// do not parse as positions are simply replaced.
//
// A [Saver] connects a tracker to a store: [Saver.Run] saves the committed position when it
// advances, at most once per interval, and [Saver.Flush] saves the final one; with
// [SaverOptions.Compare] it also never saves a position before the last one it saved. On
// start, a producer loads the saved value, parses it with [ParsePosition], passes it to
// [NewTracker] and resumes reading there.
//
// # Draining
//
// Drain in this order: stop tracking new messages; [Tracker.Wait] until no message is
// pending (the committed offset then reflects every message done); stop [Saver.Run]; call
// [Saver.Flush]. [Tracker.Advanced] signals advances, coalesced, to a single consumer such
// as a Saver, which reads the value with [Tracker.Committed]. To abandon instead of
// draining, cancel the context given to Wait and still flush: the committed offset stays
// behind every unfinished message, so a restart processes them again.
package ack
