// Package pipelinetest helps test code built on package pipeline: a [Producer] a test pushes
// messages into and whose acknowledgements it awaits (Broadway's test_message and caller
// acknowledger, in Go), [Start] to run a pipeline for the length of a test, and an [Observer]
// that counts every event.
//
// # Pushing messages and awaiting acknowledgements
//
//	prod := pipelinetest.NewProducer[Order]()
//	p, _ := pipeline.New(pipeline.Options[Order]{Producer: prod, ...})
//	run := pipelinetest.Start(t, p)
//	res, err := prod.Push(o1, o2).Wait(ctx) // both acknowledged, successful or failed
//	prod.Close()                            // end of input: the pipeline drains
//	err = run.Wait()
//
// Every push returns a [Delivery]: the acknowledger of the pushed messages, which records how
// each ended (the first acknowledgement wins; later ones are counted as duplicates) and whose
// Done channel closes when every message has been acknowledged.
package pipelinetest
