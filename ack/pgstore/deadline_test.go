package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/ack/pgstore"
)

// A save deadline is enforced by the database: a save whose statements run after it (the
// deadline here is already past when Save starts, as for a process paused between its
// lease check and its write) changes nothing — neither the first insert nor an update —
// and says so; with the deadline ahead, saves go through; another save racing it is still
// compared as usual.
func TestSaveDeadlineByTheDatabase(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	s, err := pgstore.New(ctx, pool, pgstore.Options{Table: tempTable(t, pool)})
	if err != nil {
		t.Fatal(err)
	}
	key := ack.CheckpointKey("fenced", "/v1/stream/fenced")
	past := ack.WithSaveDeadline(ctx, time.Now().Add(-time.Second))
	future := ack.WithSaveDeadline(ctx, time.Now().Add(time.Minute))

	if err := s.Save(past, key, "0000000000000000_0000000000000010"); !errors.Is(err, ack.ErrSaveDeadline) {
		t.Fatalf("first save after the deadline: %v, want ErrSaveDeadline", err)
	}
	if _, found, err := s.Load(ctx, key); err != nil || found {
		t.Fatalf("after a first save past its deadline: found %v (%v), want nothing saved", found, err)
	}
	if err := s.Save(future, key, "0000000000000000_0000000000000010"); err != nil {
		t.Fatalf("first save before the deadline: %v", err)
	}
	if err := s.Save(past, key, "0000000000000000_0000000000000020"); !errors.Is(err, ack.ErrSaveDeadline) {
		t.Fatalf("update after the deadline: %v, want ErrSaveDeadline", err)
	}
	if err := s.Save(past, key, "0000000000000000_0000000000000005"); err != nil {
		t.Fatalf("a save behind what is there changes nothing and is no error, deadline or not: %v", err)
	}
	if got, _, _ := s.Load(ctx, key); got != "0000000000000000_0000000000000010" {
		t.Fatalf("after saves past their deadline: %q, want the value saved before", got)
	}
	if err := s.Save(future, key, "0000000000000000_0000000000000030"); err != nil {
		t.Fatalf("update before the deadline: %v", err)
	}
	if got, _, _ := s.Load(ctx, key); got != "0000000000000000_0000000000000030" {
		t.Fatalf("after an update before its deadline: %q", got)
	}
	// Without a save deadline, nothing changes: the store's plain statements.
	if err := s.Save(ctx, key, "0000000000000000_0000000000000040"); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Load(ctx, key); got != "0000000000000000_0000000000000040" {
		t.Fatalf("plain save: %q", got)
	}
}
