package durablestreams

import (
	"encoding/json"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/sluice-go/sluice/dsclient"
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

func newDecoder[T any](custom func(data []byte, dst *T) error) decoder[T] {
	if custom != nil {
		return decoder[T]{json: custom, bytes: custom}
	}
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
			json: func(raw []byte, dst *T) error { return json.Unmarshal(raw, dst) },
			bytes: func(data []byte, dst *T) error {
				*(*string)(unsafe.Pointer(dst)) = string(data)
				return nil
			},
		}
	default:
		notJSON := fmt.Errorf("the stream is not JSON: ProducerOptions.Decode is needed to make a %v of its bytes", t)
		return decoder[T]{
			json:  func(raw []byte, dst *T) error { return json.Unmarshal(raw, dst) },
			bytes: func([]byte, *T) error { return notJSON },
		}
	}
}
