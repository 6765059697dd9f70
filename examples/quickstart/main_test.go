package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/internal/refserver"
)

// checkSummary fails unless the summary accounts for every event written.
func checkSummary(t *testing.T, s Summary, out string) {
	t.Helper()
	n := int64(s.Written)
	var keyed int64
	for _, a := range s.Keys {
		keyed += a.Count
	}
	wantFailed := int64(0)
	for i := range s.Written {
		if e := sampleEvent(i); e.Type == "purchase" && e.Amount < 0 {
			wantFailed++
		}
	}
	switch {
	case s.Acked != n:
		t.Fatalf("acknowledged %d of %d", s.Acked, n)
	case s.Failed != wantFailed || int64(s.DeadLetters) != wantFailed:
		t.Fatalf("%d failed, %d dead letters; want %d", s.Failed, s.DeadLetters, wantFailed)
	case s.DatabaseRows+s.AnalyticsEvents+s.Failed != n:
		t.Fatalf("database %d + analytics %d + failed %d != %d written", s.DatabaseRows, s.AnalyticsEvents, s.Failed, n)
	case keyed != s.AnalyticsEvents || len(s.Keys) != 3:
		t.Fatalf("analytics keys %v do not add up to %d", s.Keys, s.AnalyticsEvents)
	case !s.AtTail:
		t.Fatalf("committed offset %q is not the stream's tail", s.Committed)
	}
	for _, want := range []string{"processed:", "of " + itoa(s.Written) + " acknowledged", "the stream's tail: yes"} {
		if !strings.Contains(out, want) {
			t.Fatalf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestQuickstartInProcess(t *testing.T) {
	var out bytes.Buffer
	s, err := run(t.Context(), Config{N: 20_000, Progress: 50 * time.Millisecond}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	checkSummary(t, s, out.String())
}

func TestQuickstartReferenceServer(t *testing.T) {
	if !refserver.Available() {
		if os.Getenv(refserver.RequireEnv) == "1" {
			t.Fatalf("node and npm are required (%s=1)", refserver.RequireEnv)
		}
		t.Skip("node/npm not installed")
	}
	srv := refserver.ForTest(t, refserver.Options{})
	var out bytes.Buffer
	s, err := run(t.Context(), Config{N: 10_000, URL: srv.StreamURL("")}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	checkSummary(t, s, out.String())
}

func TestQuickstartPostgres(t *testing.T) {
	dsn := os.Getenv("SLUICE_PG_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL required: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	defer pool.Close()
	var out bytes.Buffer
	s, err := run(t.Context(), Config{N: 10_000, PG: dsn}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	checkSummary(t, s, out.String())
	var rows int64
	u, err := url.Parse(s.Stream) // rows name their stream by its path
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM `+pgTableName+` WHERE stream = $1`, u.Path).Scan(&rows); err != nil || rows != s.DatabaseRows {
		t.Fatalf("table holds %d rows of the stream (%v), summary says %d", rows, err, s.DatabaseRows)
	}
}
