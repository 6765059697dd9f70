package main

import "github.com/sluice-go/sluice/ack"

var _ ack.Acknowledger = (*checker)(nil)

// Ack makes the checker the acknowledger of the messages a Sluice producer
// makes: each message's ack.Ref carries its id in N.
func (c *checker) Ack(successful []ack.Ref, failed []ack.Failure) {
	for _, r := range successful {
		c.mark(int64(r.N))
	}
	if len(failed) > 0 {
		c.failed.Add(int64(len(failed)))
	}
	c.count(len(successful) + len(failed))
}
