// Package segmentiojson adapts github.com/segmentio/encoding/json to [dsclient.JSONDecoder],
// so that typed reads and the pipeline producers decode JSON items with it instead of
// encoding/json:
//
//	prod, err := durablestreams.NewProducer(durablestreams.ProducerOptions[Order]{
//		Stream: stream,
//		JSON:   segmentiojson.Decoder,
//	})
//
// It is a package of its own so that nothing else of the module depends on segmentio/encoding.
// On the project's workload (~100-byte JSON orders) it was the fastest decoder that passed
// every check of bench/decoders (the same values as encoding/json, malformed input and type
// mismatches refused, no reference kept to the item's bytes): about 6x encoding/json there,
// with goccy/go-json close behind. Items are delimited and bounded by the client
// (ReadOptions.MaxBytes) before they reach it.
package segmentiojson

import (
	"github.com/segmentio/encoding/json"

	"github.com/sluice-go/sluice/dsclient"
)

// Decoder decodes with segmentio/encoding/json's Unmarshal, whose semantics are those of
// encoding/json. It is safe for concurrent use.
var Decoder dsclient.JSONDecoder = dsclient.JSONDecoderFunc(json.Unmarshal)
