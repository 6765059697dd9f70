// Package decoders names the JSON decoders the benchmark suites compare: encoding/json and
// the candidates of issue 15 (sonic, goccy/go-json, segmentio/encoding, and encoding/json/v2
// when the toolchain builds it), each as one Unmarshal function, so that a suite takes the
// decoder as a variant (-decoders std,sonic).
//
// The versions are pinned in bench/go.mod; [Decoder.About] names each one's module and
// configuration. encoding/json/v2 is built only with GOEXPERIMENT=jsonv2 (Go 1.25 and later),
// which also makes encoding/json itself run on the v2 implementation: runs with and without
// the experiment are different comparisons.
package decoders

import (
	stdjson "encoding/json"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/bytedance/sonic"
	goccy "github.com/goccy/go-json"
	segmentio "github.com/segmentio/encoding/json"
)

// Decoder is one way of decoding one JSON value into a Go value, as [encoding/json.Unmarshal]
// does. Unmarshal is safe for concurrent use.
type Decoder struct {
	// Name is the variant's name in flags and tables: std, sonic, sonic-default, goccy,
	// segmentio, jsonv2.
	Name string
	// About names the module, its version and the configuration used.
	About string
	// Unmarshal decodes data into v (a pointer).
	Unmarshal func(data []byte, v any) error
}

var all = []Decoder{
	{"std", "encoding/json Unmarshal", stdjson.Unmarshal},
	{"sonic", "github.com/bytedance/sonic " + version("github.com/bytedance/sonic") + " ConfigStd (encoding/json-compatible: copies and validates strings)", sonic.ConfigStd.Unmarshal},
	{"sonic-default", "github.com/bytedance/sonic " + version("github.com/bytedance/sonic") + " ConfigDefault (sonic.Unmarshal)", sonic.ConfigDefault.Unmarshal},
	{"goccy", "github.com/goccy/go-json " + version("github.com/goccy/go-json") + " Unmarshal", goccy.Unmarshal},
	{"segmentio", "github.com/segmentio/encoding/json " + version("github.com/segmentio/encoding") + " Unmarshal", segmentio.Unmarshal},
}

// register adds a decoder built only under some build constraint (jsonv2).
func register(d Decoder) { all = append(all, d) }

// All returns every decoder this binary was built with, std first.
func All() []Decoder { return append([]Decoder(nil), all...) }

// Names returns the names of [All].
func Names() []string {
	var out []string
	for _, d := range all {
		out = append(out, d.Name)
	}
	return out
}

// Parse returns the decoders named in a comma-separated list ("all" or "" for every one), in
// the list's order, or an error naming an unknown one.
func Parse(list string) ([]Decoder, error) {
	if list == "" || list == "all" {
		return All(), nil
	}
	var out []Decoder
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		d, ok := ByName(name)
		if !ok {
			hint := ""
			if name == "jsonv2" {
				hint = " (build with GOEXPERIMENT=jsonv2)"
			}
			return nil, fmt.Errorf("unknown decoder %q%s; known: %s", name, hint, strings.Join(Names(), ", "))
		}
		out = append(out, d)
	}
	return out, nil
}

// ByName returns the decoder called name.
func ByName(name string) (Decoder, bool) {
	for _, d := range all {
		if d.Name == name {
			return d, true
		}
	}
	return Decoder{}, false
}

// version returns the version of module path this binary was built with, or "(unknown)".
func version(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				if m.Replace != nil {
					return m.Replace.Version
				}
				return m.Version
			}
		}
	}
	return "(unknown)"
}
