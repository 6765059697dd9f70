package main

import "testing"

func TestQuickstartAcknowledgesEveryEvent(t *testing.T) {
	// run returns an error unless every event was acknowledged.
	if err := run(t.Context(), 20_000); err != nil {
		t.Fatal(err)
	}
}
