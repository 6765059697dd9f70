// Package killtest helps the tests that SIGKILL child processes at random moments (the
// crash tests of ack/pgstore and sink/dssink): it starts a child and waits until the child
// says it is doing its work, so that the time before a kill is spent working, not starting
// up, however loaded the machine is.
package killtest
