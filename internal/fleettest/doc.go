// Package fleettest proves the subscription worker on several hosts of one machine: it
// makes hosts with Linux network namespaces (a bridge, one veth per host, addresses of a
// 10.77.N.0/24 of its own), runs a Durable Streams server on one and worker processes on
// others, and has them fail in the ways hosts fail (SIGKILL, SIGSTOP past the lease,
// restart).
//
// # Hosts
//
// [NewNet] makes the hosts and [Net.Close] removes them; [RemoveStale] removes what a run
// that was killed left behind (namespaces and links are named after the process that made
// them). [Host.Command] runs a program on a host. [Check] says why namespaces cannot be made
// here (not root, no ip command, refused), so that a test can skip with that reason; with
// SLUICE_REQUIRE_NETNS=1 ([RequireEnv]) the test fails instead. [Forward] relays
// connections from an address the hosts reach to a service of the root namespace's
// loopback (PostgreSQL).
//
// # Processes
//
// The test binary is its own child processes: [ChildMain], called from TestMain, runs a
// worker ([WorkerConfig]: a pipeline over a SubscriptionProducer into a pgsink table, with
// the pgstore checkpoint store shared by every worker, reporting its claims on standard
// output as [Event] lines) or the reference server on a host's address
// ([RefServerConfig]).
//
// # The test
//
// TestFleetNetns runs the scenario against the in-process server's standalone command
// (dstest-server, built by the test) and against the reference server: 200 streams under
// the patterns of 4 subscriptions, writers appending throughout, three workers on three
// hosts; one worker is killed (and the takeover gap measured), one stopped past its lease
// and continued (its claims end fenced or expired, and neither a checkpoint nor a cursor
// moves because of it after the takeover), and the killed one is restarted. At the end every
// appended event is one row, at its own sequence number, and every subscription's cursors
// are at the streams' tails. scripts/fleet-netns.sh runs it and prints what happened.
package fleettest
