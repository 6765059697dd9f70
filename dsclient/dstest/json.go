package dstest

import (
	"bytes"
	"encoding/json"
	"errors"
)

// errEmptyArray reports an append whose body is the empty JSON array.
var errEmptyArray = errors.New("empty JSON arrays are not allowed in appends")

// jsonRecord validates body as one JSON value and returns the record to store: the compact
// form of the value followed by a comma, or, when the value is an array, of its elements,
// each followed by a comma (one level of flattening). It uses buf as scratch space and the
// result aliases it. An empty array yields an empty record and errEmptyArray.
func jsonRecord(buf *bytes.Buffer, body []byte) ([]byte, error) {
	buf.Reset()
	if err := json.Compact(buf, body); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if len(b) == 0 {
		return nil, errors.New("no JSON value")
	}
	if b[0] == '[' {
		if len(b) == 2 {
			return nil, errEmptyArray
		}
		rec := b[1:]
		rec[len(rec)-1] = ','
		return rec, nil
	}
	buf.WriteByte(',')
	return buf.Bytes(), nil
}

// jsonPrefix returns the length of the first n values of a stored JSON record (values each
// followed by a comma), or false when the record holds fewer than n values.
func jsonPrefix(rec []byte, n int) (int, bool) {
	if n == 0 {
		return 0, true
	}
	depth, inString, escaped := 0, false, false
	for i, c := range rec {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		case c == ',' && depth == 0:
			n--
			if n == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}
