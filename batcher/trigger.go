package batcher

// Trigger tells why a batch closed.
type Trigger uint8

// The triggers. The zero Trigger is not a valid trigger.
const (
	// TriggerSize: the batch reached its size.
	TriggerSize Trigger = iota + 1
	// TriggerBytes: the next item would have taken the batch past its byte size, or one item
	// alone reached it.
	TriggerBytes
	// TriggerTimeout: the batch timeout passed since the batch's first item.
	TriggerTimeout
	// TriggerFlush: the batch was flushed before it was full, as when a pipeline drains.
	TriggerFlush
)

// String returns "size", "bytes", "timeout", "flush", or "Trigger(n)" for an invalid value.
func (t Trigger) String() string {
	switch t {
	case TriggerSize:
		return "size"
	case TriggerBytes:
		return "bytes"
	case TriggerTimeout:
		return "timeout"
	case TriggerFlush:
		return "flush"
	}
	return "Trigger(" + itoa(int(t)) + ")"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
