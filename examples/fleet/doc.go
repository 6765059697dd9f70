// Command fleet runs a fleet of workers over many streams: the embedded Durable Streams
// server (dsclient/dstest), one stream per user, subscriptions that share the users out,
// and three workers that the server coordinates. One worker is killed on the way; the
// others take its subscriptions over once its lease passes, and every event still ends up
// in the sink exactly once.
//
//	go run ./examples/fleet                      # 100 users, 4 subscriptions, 3 workers in this process, one killed after 3s
//	go run ./examples/fleet -procs               # the same with each worker a process of its own, killed with SIGKILL
//	go run ./examples/fleet -workers 5 -users 1000 -kill-after 0 -duration 20s
//
// # What it does
//
// The application's part is done once: a wake stream, -subs pull-wake subscriptions, each
// over the streams of a share of the users (pattern users/<k>/*), and a stream per user
// (users/<k>/u042). A writer appends -rate events per second, spread over the users, for
// -duration; each event carries its number in its user's stream.
//
// Each worker is a pipeline over a durablestreams.SubscriptionProducer joined to every
// subscription (durablestreams.RunWorker): it follows the wake stream, claims the
// subscriptions that have work, reads their streams from the committed positions, and
// heartbeats its claims. Its processors are partitioned by stream, so that each user's
// events are handled in order, and a batcher writes them to the sink: rows keyed by
// (stream, position), inserted if absent, as a table with that primary key would take them.
// The workers share one checkpoint store (in memory in one process; with -procs, an
// ack.FileStore in a temporary directory), so that a message keeps its position whichever
// worker delivers it.
//
// After -kill-after (or later, once a worker holds a claim) the busiest worker is killed:
// with -procs by SIGKILL; in one process by cutting its network and its checkpoint store and
// losing its work in flight, which is what the server and the other workers see of a crashed
// host. Its subscriptions are claimed by the others once its lease passes; the lines printed
// say when.
//
// # The summary
//
// Per worker: claims won, how they ended (done: caught up and acked; released; fenced;
// expired: the worker stopped a claim whose heartbeats failed before its lease passed;
// failed), the messages it wrote to the sink and the streams they came from. Then the
// checks: every appended event is one row, at a position equal to its event's number,
// and every subscription's cursors are at the tails of its streams. A message delivered
// again after a takeover (the dead worker had it in flight) is counted as a delivery and
// inserted once.
package main
