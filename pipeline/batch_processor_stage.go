package pipeline

// batchWorker is one batch processor of a batcher with its scratch space, reused for every
// batch so that the hot path allocates nothing.
type batchWorker[T any] struct {
	r     *run[T]
	b     *batcherStage[T]
	info  BatchInfo // the batch being handled
	retry retryScratch[T]
	fin   finishScratch[T]
}

// batchProcessorLoop is one batch processor of a batcher: it handles each batch, retries the
// failures the policy retries, and acknowledges the batch.
func (r *run[T]) batchProcessorLoop(b *batcherStage[T], part int, in <-chan batchJob[T]) {
	defer r.batchProcsExited.arrive(nil)
	w := &batchWorker[T]{r: r, b: b}
	retry := r.retries()
	for job := range in {
		msgs := job.msgs
		if r.abandoned.Load() {
			b.batches.put(msgs)
			continue
		}
		job.info.Partition = part
		w.info = job.info
		t0 := r.now()
		if retry {
			w.retry.save(msgs)
		}
		w.handleBatch(msgs, job.info)
		if retry && countFailed(msgs) > 0 {
			r.retry(w, &w.retry, msgs)
		}
		if r.observed {
			r.obs.BatchHandled(BatchEvent{Pipeline: r.o.Name, Info: job.info, Failed: countFailed(msgs), Duration: since(t0)})
		}
		r.finish(&w.fin, msgs)
		b.batches.put(msgs)
	}
}

// handleBatch calls the batch handler once; its error or panic fails every message of msgs
// that has not failed.
func (w *batchWorker[T]) handleBatch(msgs []Message[T], info BatchInfo) {
	if err := callBatch(w.r.hctx, w.b.opts.Handler, msgs, info); err != nil {
		for i := range msgs {
			msgs[i].Fail(err)
		}
	}
}

// handle retries msgs, the failed messages of the batch being handled, as a smaller batch of
// the same key.
func (w *batchWorker[T]) handle(msgs []Message[T]) {
	info := w.info
	info.Size, info.Bytes = len(msgs), 0
	if sizeOf := w.b.opts.SizeOf; sizeOf != nil {
		for i := range msgs {
			info.Bytes += callSizeOf(sizeOf, &msgs[i])
		}
	}
	w.handleBatch(msgs, info)
}

// stage names the batcher in retry events.
func (w *batchWorker[T]) stage() string { return w.b.name }
