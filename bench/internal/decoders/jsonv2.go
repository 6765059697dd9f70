//go:build goexperiment.jsonv2

package decoders

import jsonv2 "encoding/json/v2"

func init() {
	register(Decoder{"jsonv2", "encoding/json/v2 Unmarshal (GOEXPERIMENT=jsonv2; default v2 options: case-sensitive names, invalid UTF-8 and duplicate names rejected)",
		func(data []byte, v any) error { return jsonv2.Unmarshal(data, v) }})
}
