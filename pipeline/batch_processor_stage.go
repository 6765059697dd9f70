package pipeline

// batchProcessorLoop is one batch processor of a batcher: it handles each batch, retries its
// failed messages under FailRetry, and acknowledges the batch.
func (r *run[T]) batchProcessorLoop(b *batcherStage[T], part int, in <-chan batchJob[T]) {
	defer r.batchProcessorExit()
	w := newWorker(r)
	retry := r.o.Failure.Policy == FailRetry
	for job := range in {
		msgs := job.msgs
		if r.abandoned.Load() {
			b.batches.put(msgs)
			continue
		}
		job.info.Partition = part
		t0 := r.now()
		if retry {
			w.orig = append(w.orig[:0], msgs...)
		}
		r.handleBatch(b, msgs, job.info)
		if retry && countFailed(msgs) > 0 {
			r.retryBatch(b, w, msgs, job.info)
			clear(w.orig)
		}
		if r.observed {
			r.obs.BatchHandled(BatchEvent{Pipeline: r.o.Name, Info: job.info, Failed: countFailed(msgs), Duration: since(t0)})
		}
		r.finish(w, msgs)
		b.batches.put(msgs)
	}
}

func (r *run[T]) handleBatch(b *batcherStage[T], msgs []Message[T], info BatchInfo) {
	if err := callBatch(r.hctx, b.opts.Handler, msgs, info); err != nil {
		for i := range msgs {
			msgs[i].Fail(err)
		}
	}
}

// retryBatch sends the failed messages of a batch through the batch handler again, as a
// smaller batch of the same key, from their state before the handler.
func (r *run[T]) retryBatch(b *batcherStage[T], w *worker[T], msgs []Message[T], info BatchInfo) {
	for attempt := 1; attempt <= r.o.Failure.MaxRetries; attempt++ {
		w.idx = w.idx[:0]
		for i := range msgs {
			if msgs[i].err != nil {
				w.idx = append(w.idx, i)
			}
		}
		if len(w.idx) == 0 {
			return
		}
		if !r.backoff(b.name, len(w.idx), attempt) {
			return
		}
		w.sub = w.sub[:0]
		for _, i := range w.idx {
			m := w.orig[i]
			m.attempt = int32(attempt)
			w.sub = append(w.sub, m)
		}
		sub := info
		sub.Size, sub.Bytes = len(w.sub), 0
		if b.opts.SizeOf != nil {
			for k := range w.sub {
				sub.Bytes += callSizeOf(b.opts.SizeOf, &w.sub[k])
			}
		}
		r.handleBatch(b, w.sub, sub)
		for k, i := range w.idx {
			msgs[i] = w.sub[k]
		}
		clear(w.sub)
	}
}

func (r *run[T]) batchProcessorExit() {
	if r.batchProcsLeft.Add(-1) == 0 {
		close(r.batchProcsDone)
	}
}
