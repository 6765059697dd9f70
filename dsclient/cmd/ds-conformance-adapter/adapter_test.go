package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func run(t *testing.T, a *adapter, line string) map[string]any {
	t.Helper()
	var c command
	if err := json.Unmarshal([]byte(line), &c); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(a.handle(&c))
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func TestAdapterProtocol(t *testing.T) {
	a := newAdapter()
	defer a.shutdown()
	init := run(t, a, `{"type":"init","serverUrl":"http://127.0.0.1:1"}`)
	if init["success"] != true || init["features"].(map[string]any)["strictZeroValidation"] != true {
		t.Fatalf("init: %v", init)
	}
	for _, tc := range []struct{ cmd, want string }{
		{`{"type":"validate","target":{"target":"retry-options","maxRetries":3,"initialDelayMs":100,"maxDelayMs":5000,"multiplier":2}}`, ""},
		{`{"type":"validate","target":{"target":"retry-options","initialDelayMs":0}}`, "initialDelayMs"},
		{`{"type":"validate","target":{"target":"idempotent-producer","producerId":"p","maxBatchItems":0}}`, "maxBatchItems"},
		{`{"type":"validate","target":{"target":"idempotent-producer","producerId":"p","epoch":-1}}`, "epoch"},
	} {
		res := run(t, a, tc.cmd)
		if tc.want == "" {
			if res["success"] != true {
				t.Errorf("%s: %v", tc.cmd, res)
			}
			continue
		}
		if res["errorCode"] != "INVALID_ARGUMENT" || !strings.Contains(res["message"].(string), tc.want) {
			t.Errorf("%s: %v", tc.cmd, res)
		}
	}
	// Nothing listens on port 1: a network error, reported as such.
	res := run(t, a, `{"type":"head","path":"/s"}`)
	if res["errorCode"] != "NETWORK_ERROR" || !strings.Contains(res["message"].(string), "/s") {
		t.Fatalf("head: %v", res)
	}
	if res := run(t, a, `{"type":"nope"}`); res["errorCode"] != "NOT_SUPPORTED" {
		t.Fatalf("unknown: %v", res)
	}
}
