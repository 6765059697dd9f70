package main

import (
	"context"
	"testing"

	"github.com/sluice-go/sluice/dsclient/dstest"
)

// Every read contender reads every message of a small stream on the in-process server.
func TestContendersReadEverything(t *testing.T) {
	setupClients()
	srv := dstest.ForTest(t, dstest.Options{})
	ctx := context.Background()
	url := srv.StreamURL("bench-test")
	const n = 1000
	if err := fill(ctx, url, n); err != nil {
		t.Fatal(err)
	}
	for _, c := range contenders {
		got, err := c.run(ctx, url)
		if err != nil || got != n {
			t.Errorf("%s %s: read %d of %d: %v", c.group, c.name, got, n, err)
		}
	}
}
