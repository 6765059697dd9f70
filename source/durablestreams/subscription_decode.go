package durablestreams

import "github.com/sluice-go/sluice/pipeline"

var _ pipeline.Decoder[int] = (*SubscriptionProducer[int])(nil)

// DeferDecoding implements [pipeline.Decoder]: the pipeline calls it before the first
// Produce when its processors will decode the messages with DecodeMessages. From then on
// every stream's producer hands out the items of JSON streams as bytes, decoded on the
// processors' goroutines, in parallel.
func (p *SubscriptionProducer[T]) DeferDecoding() { p.deferred.Store(true) }

// DecodeMessages implements [pipeline.Decoder]: it decodes the messages of msgs that were
// handed out undecoded, whichever stream they come from, and fails those that do not decode
// with a *[DecodeError] (bad data), as [Producer.DecodeMessages] does. It is safe for
// concurrent use on distinct messages.
func (p *SubscriptionProducer[T]) DecodeMessages(msgs []pipeline.Message[T]) {
	var src any
	var f *fill
	failed := 0
	for i := range msgs {
		m := &msgs[i]
		if m.Metadata.Source != src { // one type check per fill, not per message
			p.decodeFailed(f, failed)
			failed = 0
			src = m.Metadata.Source
			f, _ = src.(*fill)
		}
		if f == nil || m.Failed() {
			continue
		}
		raw := f.item(m.Metadata.Position)
		if err := p.dec.json(raw, &m.Data); err != nil {
			m.Fail(&DecodeError{URL: f.chunk.url, Offset: f.chunk.info.Load().StartOffset, Position: m.Metadata.Position, Err: err,
				Raw: append([]byte(nil), raw...)})
			failed++
		}
	}
	p.decodeFailed(f, failed)
}

// decodeFailed reports n messages of f that did not decode to the ProducerObserver.
func (p *SubscriptionProducer[T]) decodeFailed(f *fill, n int) {
	if n > 0 && f != nil && p.opts.ProducerObserver != nil {
		p.opts.ProducerObserver.ProducerMessages(ProducerMessagesEvent{URL: f.chunk.url, DecodeFailures: n})
	}
}
