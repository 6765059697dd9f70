// Package producertest holds the conformance suite of [pipeline.Producer] implementations:
// the contract tests that every producer of the project passes, and that a producer of
// one's own can run, in the style of the checkpoint-store suite ack/acktest.
//
// # Running the suite
//
// [TestProducer] takes the producer's [Features] (which the suite checks, and which decide
// the subtests that apply) and a constructor of a fresh [Fixture] per subtest: the
// producer over a known input, given the suite's acknowledger:
//
//	func TestOrdersConformance(t *testing.T) {
//		producertest.TestProducer(t, producertest.Features{Ordered: true, Closer: true},
//			func(t testing.TB, a ack.Acknowledger) producertest.Fixture[Order] {
//				return producertest.Fixture[Order]{Producer: newOrders(t, a), Input: orders}
//			})
//	}
//
// The input is finite (the producer ends it with [pipeline.ErrEndOfInput]) or, with
// Features.Endless, the messages the producer has before it waits for more (a live read
// at its tail, an open channel). The suite tells messages apart by their data.
//
// # What it asserts
//
// Called directly, as a pipeline calls it:
//   - DemandHonoured, ReturnsWhatItHas: every Produce call returns between 1 and len(msgs)
//     messages, or none and an error (never none and nil), writes nothing past them, and
//     returns what it has rather than wait to fill msgs; every message carries the
//     acknowledger Features.Acks says; every input message arrives once, in the order of
//     the input within each sequence (Metadata.Stream) where Features.Ordered promises it,
//     numbered 0, 1, 2, … by Metadata.Position where Features.Positions does.
//   - EndOfInput (finite): ErrEndOfInput comes after the last message, not before, and
//     every later call returns it again.
//   - WaitsWhenIdle (endless): with nothing to give, Produce blocks: over [IdleWindow] it
//     does not return, and the fixture's Activity count (requests, pulls) grows by at most
//     [IdleActivity]; the bound is on work done, not on time taken.
//   - Cancel: a Produce waiting with nothing to give returns promptly with its context's
//     error once the context is cancelled (a finite producer, which never waits, is called
//     with a context already cancelled).
//   - PrepareForDraining ([pipeline.DrainNotifier]): called while a Produce waits
//     (endless) or between calls (finite), it does not block, and the Produce, its context
//     cancelled at the same moment, returns promptly with the context's error. The suite
//     calls it just before cancelling the context (a pipeline cancels just before calling
//     it), so that a PrepareForDraining that waits for a running Produce is caught.
//   - ConcurrentProduce (Features.Concurrent): four goroutines calling Produce at once get
//     every input message exactly once between them.
//   - Decoder ([pipeline.Decoder]): after DeferDecoding, messages decode to their input
//     data with DecodeMessages called from several goroutines at once.
//   - CloseUnused ([pipeline.Closer]): Close of a producer never used returns nil, twice.
//
// Run in small pipelines ([pipeline.New]), through a wrapper that checks every Produce call
// as above and passes every acknowledgement on to the producer's own acknowledger:
//   - Acknowledgements: the whole input goes through a processor pool and a batcher, some
//     messages failed as bad data, some sent to no batcher; Run returns nil (an endless
//     producer's pipeline is stopped once everything is acknowledged); each message is
//     handled once, decoded (on the processors, for a Decoder), and its acknowledgement
//     reaches the producer's acknowledger exactly once, failed where the handler failed it;
//     the fixture's acknowledger ([AcksGiven]) or its Acknowledged count ([AcksOwn]) agrees;
//     DeferDecoding came once before the first Produce, PrepareForDraining and Close once,
//     and Close can be called again.
//   - Drain: a pipeline stopped in the middle of the input (its processor holds the first
//     message; MaxInFlight is below [MinInput]) drains and Run returns nil; what was handed
//     out was handled and acknowledged exactly once, and is a prefix of each sequence by
//     position; PrepareForDraining and Close were called once, and Close can be called
//     again.
//
// Every subtest also checks that no goroutine is left behind: after the subtest, the
// producer's Close and the fixture's cleanups, the goroutine count must come back to its
// level before the fixture was made, within [LeakTimeout] (polled with
// [runtime.NumGoroutine]; the standard library only).
//
// # Time
//
// The suite's time limits ([StepTimeout], [CancelTimeout], [LeakTimeout]) only bound how
// long a broken producer can hold a subtest; a correct producer passes however slow the
// machine. The one window the suite waits out on purpose, [IdleWindow], is where an idle
// producer must do nothing: a longer window on a loaded machine cannot fail a producer that
// blocks.
package producertest
