package pgsink_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-go/sluice/sink/pgsink"
)

func TestLostCreateRaceCodes(t *testing.T) {
	for code, want := range map[string]bool{"42P07": true, "42710": true, "23505": true, "42601": false, "40P01": false} {
		err := fmt.Errorf("create: %w", &pgconn.PgError{Code: code})
		if got := pgsink.LostCreateRace(err); got != want {
			t.Errorf("code %s: %v, want %v", code, got, want)
		}
	}
	if pgsink.LostCreateRace(errors.New("connection refused")) || pgsink.LostCreateRace(nil) {
		t.Error("a non-database error taken for a lost race")
	}
}

// Programs that create their table at start, several at once: every CREATE TABLE IF NOT
// EXISTS either succeeds or fails in a way LostCreateRace recognises, and the table is there.
func TestLostCreateRaceOnTheRealDatabase(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	const tables, creators = 15, 6
	seen := map[string]int{}
	for range tables {
		name := fmt.Sprintf("pgsink_create_race_%d", rand.Uint32())
		table := pgx.Identifier{name}.Sanitize()
		t.Cleanup(func() { pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })
		start := make(chan struct{})
		errs := make([]error, creators)
		var wg sync.WaitGroup
		for i := range creators {
			wg.Go(func() {
				<-start
				_, errs[i] = pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (k bigint PRIMARY KEY, v text)`)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			var pe *pgconn.PgError
			switch {
			case err == nil:
				seen["ok"]++
			case !pgsink.LostCreateRace(err):
				t.Fatalf("table %s: a creator failed with %v, not a lost race", name, err)
			case errors.As(err, &pe):
				seen[pe.Code]++
			}
		}
		if _, err := pool.Exec(ctx, `INSERT INTO `+table+` VALUES (1, 'x')`); err != nil {
			t.Fatalf("table %s is not there: %v", name, err)
		}
	}
	t.Logf("outcomes of %d creators × %d tables: %v", creators, tables, seen)
}
