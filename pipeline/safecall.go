package pipeline

import (
	"context"
	"runtime/debug"

	"github.com/sluice-go/sluice/ack"
)

// The calls into user code, each turning a panic into a *PanicError with the stack.

func recovered(v any) *PanicError { return &PanicError{Value: v, Stack: debug.Stack()} }

func callHandle[T any](ctx context.Context, h Handler[T], m *Message[T]) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered(v)
		}
	}()
	return h.HandleMessage(ctx, m)
}

func callPrepare[T any](ctx context.Context, p MessagePreparer[T], msgs []Message[T]) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered(v)
		}
	}()
	return p.PrepareMessages(ctx, msgs)
}

func callBatch[T any](ctx context.Context, h BatchHandler[T], batch []Message[T], info BatchInfo) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered(v)
		}
	}()
	return h.HandleBatch(ctx, batch, info)
}

func callFailed[T any](ctx context.Context, h FailureHandler[T], msgs []Message[T]) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered(v)
		}
	}()
	return h.HandleFailed(ctx, msgs)
}

func callProduce[T any](ctx context.Context, p Producer[T], msgs []Message[T]) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			n, err = 0, recovered(v)
		}
	}()
	return p.Produce(ctx, msgs)
}

func callAck(a ack.Acknowledger, successful []ack.Ref, failed []ack.Failure) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered(v)
		}
	}()
	a.Ack(successful, failed)
	return nil
}

// callPartition returns m's partition in [0, n); a panic fails m, which then goes to 0.
func callPartition[T any](f func(*Message[T]) uint64, m *Message[T], n int) (p int) {
	defer func() {
		if v := recover(); v != nil {
			m.Fail(recovered(v))
			p = 0
		}
	}()
	return int(f(m) % uint64(n))
}

// callSizeOf returns m's size; a panic fails m.
func callSizeOf[T any](f func(*Message[T]) int, m *Message[T]) (n int) {
	defer func() {
		if v := recover(); v != nil {
			m.Fail(recovered(v))
			n = 0
		}
	}()
	return f(m)
}

func callDeferDecoding[T any](d Decoder[T]) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered(v)
		}
	}()
	d.DeferDecoding()
	return nil
}

// callDecode lets the producer decode msgs; a panic fails every message of msgs that has not
// failed.
func callDecode[T any](d Decoder[T], msgs []Message[T]) {
	defer func() {
		if v := recover(); v != nil {
			err := recovered(v)
			for i := range msgs {
				msgs[i].Fail(err)
			}
		}
	}()
	d.DecodeMessages(msgs)
}
