package dstest

import (
	"bytes"
	"testing"
)

func TestJSONRecord(t *testing.T) {
	for _, tc := range []struct {
		body, want string
		err        bool
	}{
		{`{"a": 1}`, `{"a":1},`, false},
		{` [1, 2 ,3] `, `1,2,3,`, false},
		{`[[1,2],[3,4]]`, `[1,2],[3,4],`, false},
		{`[[[1,2,3]]]`, `[[1,2,3]],`, false},
		{`"x"`, `"x",`, false},
		{`null`, `null,`, false},
		{`["a\"]", {"b":"[,]"}]`, `"a\"]",{"b":"[,]"},`, false},
		{`[]`, ``, true},
		{` [ ] `, ``, true},
		{`{`, ``, true},
		{`1 2`, ``, true},
		{``, ``, true},
		{`[1,]`, ``, true},
	} {
		var buf bytes.Buffer
		got, err := jsonRecord(&buf, []byte(tc.body))
		if (err != nil) != tc.err || (err == nil && string(got) != tc.want) {
			t.Errorf("jsonRecord(%q) = %q, %v; want %q, error %v", tc.body, got, err, tc.want, tc.err)
		}
	}
	var buf bytes.Buffer
	if _, err := jsonRecord(&buf, []byte(`[]`)); err != errEmptyArray {
		t.Errorf("empty array: %v, want errEmptyArray", err)
	}
}

func TestJSONPrefix(t *testing.T) {
	rec := []byte(`{"a":[1,2]},"x,\"y",3,[4,{"b":5}],`)
	for n, want := range []string{``, `{"a":[1,2]},`, `{"a":[1,2]},"x,\"y",`, `{"a":[1,2]},"x,\"y",3,`, string(rec)} {
		k, ok := jsonPrefix(rec, n)
		if !ok || string(rec[:k]) != want {
			t.Errorf("jsonPrefix(%d) = %q, %v; want %q", n, rec[:k], ok, want)
		}
	}
	if _, ok := jsonPrefix(rec, 5); ok {
		t.Error("jsonPrefix(5) of 4 values succeeded")
	}
}
