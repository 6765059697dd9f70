package durablestreams

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/pipeline"
)

// DecodeError is the error of a message whose item could not be decoded into the
// pipeline's data type. The message is failed, not dropped: the failure policy and the
// failure handler see it. It is bad data, not an outage: Permanent reports true, so the
// pipeline hands it to the failure handler rather than retrying it.
type DecodeError struct {
	// URL is the stream's URL (without credentials).
	URL string
	// Offset is the offset of the read the item came from, and Position the message's
	// stable position in the stream (pipeline.Metadata.Position).
	Offset   dsclient.Offset
	Position int64
	// Err is the decoder's error.
	Err error
	// Raw is the item's bytes. They belong to the error: a failure handler may keep them.
	Raw []byte
}

// Error names the stream, the item's position and the decoder's error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("durablestreams: decode message at position %d (read at offset %s) of %s: %v", e.Position, e.Offset, e.URL, e.Err)
}

// Unwrap returns the decoder's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Permanent reports true: a message that does not decode will not decode on a retry.
func (e *DecodeError) Permanent() bool { return true }

// decoder turns the bytes of one item into a T. It is chosen once, when the producer is
// built, from the data type and the options: no type switch runs per message.
type decoder[T any] struct {
	// json decodes one JSON value of a JSON stream's array.
	json func(raw []byte, dst *T) error
	// bytes decodes one message of a byte or text stream: a chunk or a Split token. data
	// is owned by the message (the producer does not reuse it).
	bytes func(data []byte, dst *T) error
	// ownsRaw reports that json keeps no reference to raw, which is only valid during the
	// call (true for every decoder but the raw-bytes one, which copies).
	ownsRaw bool
}

func newDecoder[T any](custom func(data []byte, dst *T) error, jd dsclient.JSONDecoder) decoder[T] {
	if custom != nil {
		return decoder[T]{json: custom, bytes: custom}
	}
	if jd == nil {
		jd = dsclient.StdJSON
	}
	decodeJSON := func(raw []byte, dst *T) error { return jd.DecodeJSON(raw, dst) }
	// The type checks happen here, once; the functions below convert *T with the checked
	// layout and never assert per message.
	switch t := reflect.TypeFor[T](); {
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		// []byte, json.RawMessage and other byte slices: the item's bytes as they are.
		return decoder[T]{
			json: func(raw []byte, dst *T) error {
				*(*[]byte)(unsafe.Pointer(dst)) = append([]byte(nil), raw...)
				return nil
			},
			bytes: func(data []byte, dst *T) error {
				*(*[]byte)(unsafe.Pointer(dst)) = data
				return nil
			},
		}
	case t.Kind() == reflect.String:
		return decoder[T]{
			json: decodeJSON,
			bytes: func(data []byte, dst *T) error {
				*(*string)(unsafe.Pointer(dst)) = string(data)
				return nil
			},
		}
	default:
		notJSON := fmt.Errorf("the stream is not JSON: ProducerOptions.Decode is needed to make a %v of its bytes", t)
		return decoder[T]{
			json:  decodeJSON,
			bytes: func([]byte, *T) error { return notJSON },
		}
	}
}

// fill holds the items of one Produce call whose decoding is left to the pipeline's
// processors: their bytes, copied out of the response into one arena, so that the response
// can be read on while the processors decode. Messages point to it (Metadata.Source) and find
// their bytes by their position.
type fill struct {
	chunk *Chunk
	first int64   // the position of the fill's first message
	arena []byte  // the items' bytes, one after the other
	ends  []int32 // ends[i] is the end of item i in arena
}

// newFill starts the fill of up to n messages of the current response.
func (p *Producer[T]) newFill(n int) *fill {
	return &fill{chunk: p.rec, arena: make([]byte, 0, max(p.fillBytes, 64*n)), ends: make([]int32, 0, n)}
}

// add appends the bytes of the item at position pos, the fill's next one.
func (f *fill) add(raw []byte, pos int64) {
	if len(f.ends) == 0 {
		f.first = pos
	}
	f.arena = append(f.arena, raw...)
	f.ends = append(f.ends, int32(len(f.arena)))
}

// item returns the bytes of the message at position pos.
func (f *fill) item(pos int64) []byte {
	k := pos - f.first
	start := int32(0)
	if k > 0 {
		start = f.ends[k-1]
	}
	return f.arena[start:f.ends[k]]
}

// DeferDecoding implements [pipeline.Decoder]: the pipeline calls it before the first
// Produce when it will decode the messages on its processors with DecodeMessages. From then
// on the items of JSON streams are handed out as bytes and decoded there, in parallel.
func (p *Producer[T]) DeferDecoding() { p.deferred.Store(true) }

// DecodeMessages implements [pipeline.Decoder]: it decodes the messages of msgs that were
// handed out undecoded into their Data, and fails those that do not decode with a
// *[DecodeError] (bad data). The pipeline calls it from its processors' goroutines, before
// any handler sees the messages; it is safe for concurrent use on distinct messages and
// allocates nothing beyond what the decoder does.
func (p *Producer[T]) DecodeMessages(msgs []pipeline.Message[T]) {
	var src any
	var f *fill
	failed := 0
	for i := range msgs {
		m := &msgs[i]
		if m.Metadata.Source != src { // one type check per fill, not per message
			src = m.Metadata.Source
			f, _ = src.(*fill)
		}
		if f == nil || m.Failed() {
			continue
		}
		raw := f.item(m.Metadata.Position)
		if err := p.dec.json(raw, &m.Data); err != nil {
			m.Fail(&DecodeError{URL: p.url, Offset: f.chunk.info.Load().StartOffset, Position: m.Metadata.Position, Err: err,
				Raw: append([]byte(nil), raw...)})
			failed++
		}
	}
	if failed > 0 {
		p.decodeKO.Add(uint64(failed))
		p.obs.ProducerMessages(ProducerMessagesEvent{URL: p.url, DecodeFailures: failed})
	}
}
