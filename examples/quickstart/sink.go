package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/pgsink"
)

// sink is the database batcher's handler.
type sink interface {
	pipeline.BatchHandler[Event]
	rows() int64
	describe() string
}

// position is a row's key: its event's stream and stable position in it.
type position struct {
	stream string
	pos    int64
}

// memTable stands in for a database table keyed by position: a redelivered event replaces
// nothing.
type memTable struct {
	mu   sync.Mutex
	byAt map[position]Event
}

func newMemTable() *memTable { return &memTable{byAt: map[position]Event{}} }

func (t *memTable) HandleBatch(_ context.Context, batch []pipeline.Message[Event], _ pipeline.BatchInfo) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range batch {
		at := position{batch[i].Metadata.Stream, batch[i].Metadata.Position}
		if _, dup := t.byAt[at]; !dup {
			t.byAt[at] = batch[i].Data
		}
	}
	return nil
}

func (t *memTable) rows() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int64(len(t.byAt))
}

func (t *memTable) describe() string { return "in-memory table" }

// pgTable writes purchases to PostgreSQL through the sink of package sink/pgsink: each event
// is a row keyed by its stable position in the stream, (stream, position); a batch is copied
// straight into the table, and one delivered again changes nothing.
type pgTable struct {
	pool *pgxpool.Pool
	*pgsink.Sink[Event]
}

// pgTableName is the purchases' table. (The quickstart's earlier table, quickstart_purchases,
// was keyed by chunk offset and index, positions that were not stable.)
const pgTableName = "sluice_quickstart_purchases"

func openPG(ctx context.Context, dsn string) (*pgTable, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("-pg: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("-pg: connect: %w", err)
	}
	_, err = pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+pgTableName+` (
		stream   text   NOT NULL,
		position bigint NOT NULL,
		id       bigint NOT NULL,
		user_id  text   NOT NULL,
		amount   double precision NOT NULL,
		PRIMARY KEY (stream, position)
	)`)
	// Two programs creating the table at once: one loses the race on the catalog, and the
	// table is there.
	if err != nil && !pgsink.LostCreateRace(err) {
		pool.Close()
		return nil, fmt.Errorf("-pg: create table: %w", err)
	}
	s, err := pgsink.New(pgsink.Options[Event]{
		DB:      pool,
		Table:   pgTableName,
		Columns: []string{"id", "user_id", "amount"},
		Values: func(row []any, m *pipeline.Message[Event]) ([]any, error) {
			return append(row, m.Data.ID, m.Data.User, m.Data.Amount), nil
		},
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &pgTable{pool: pool, Sink: s}, nil
}

func (t *pgTable) close() { t.pool.Close() }

func (t *pgTable) rows() int64      { return t.Stats().Written }
func (t *pgTable) describe() string { return "PostgreSQL table " + pgTableName + ", rows inserted" }
