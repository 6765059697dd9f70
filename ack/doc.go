// Package ack holds Sluice's acknowledgement contract, the offset tracker and checkpoint stores.
//
// # Acknowledgement
//
// Every message a producer emits carries an [Acknowledger] and a [Ref]. When the message ends,
// successfully or not, the pipeline hands its Ref to its Acknowledger, grouped with the other
// messages of the same batch. The package imports nothing of the pipeline, so sources,
// acknowledgers and stores can be written and tested on their own.
package ack
