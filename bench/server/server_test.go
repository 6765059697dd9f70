package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/sluice-go/sluice/dsclient/dstest"
)

// TestWorkloadsSmoke runs every workload once, small, against an in-process dstest, so that
// the suite keeps working between measured runs.
func TestWorkloadsSmoke(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	*nMsgs, *batch, *reads, *appends = 2000, 100, 1, 200
	c := &http.Client{}
	tg := &target{name: "dstest", url: srv.URL}
	ctx := context.Background()
	if v, err := readWorkload(ctx, c, tg, 0); err != nil || v <= 0 {
		t.Fatalf("read workload: %v, %v", v, err)
	}
	for _, w := range []struct{ writers, per int }{{1, 1}, {4, 1}, {1, 100}} {
		if v, err := appendWorkload(ctx, c, tg, 0, w.writers, w.per); err != nil || v <= 0 {
			t.Fatalf("append workload %+v: %v, %v", w, v, err)
		}
	}
}
