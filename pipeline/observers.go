package pipeline

// Observers returns an [Observer] that forwards every event to each of obs, in order: for
// instance the metrics' observer and one of your own. Nil observers and [NopObserver]s are
// left out, and Observers flattens observers it made itself; with none left it returns
// NopObserver{} (so that the pipeline measures no durations), with one it returns that one.
// Every method of the result calls the same method of each observer, on the pipeline's
// goroutine, so each must be as fast and safe for concurrent use as an Observer must be.
// Forwarding allocates nothing.
func Observers(obs ...Observer) Observer {
	var all observers
	for _, o := range obs {
		switch o := o.(type) {
		case nil, NopObserver, *NopObserver:
		case observers:
			all = append(all, o...)
		default:
			all = append(all, o)
		}
	}
	switch len(all) {
	case 0:
		return NopObserver{}
	case 1:
		return all[0]
	}
	return all
}

// observers is the Observer made by Observers.
type observers []Observer

func (os observers) Produced(e ProducedEvent) {
	for _, o := range os {
		o.Produced(e)
	}
}

func (os observers) Processed(e ProcessedEvent) {
	for _, o := range os {
		o.Processed(e)
	}
}

func (os observers) BatchHandled(e BatchEvent) {
	for _, o := range os {
		o.BatchHandled(e)
	}
}

func (os observers) Retried(e RetryEvent) {
	for _, o := range os {
		o.Retried(e)
	}
}

func (os observers) Acked(e AckEvent) {
	for _, o := range os {
		o.Acked(e)
	}
}

func (os observers) Drain(e DrainEvent) {
	for _, o := range os {
		o.Drain(e)
	}
}
