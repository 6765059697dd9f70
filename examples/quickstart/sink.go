package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/pipeline"
)

// sink is the database batcher's handler.
type sink interface {
	pipeline.BatchHandler[Event]
	rows() int64
	describe() string
}

// position is a row's key: where its event is in the stream.
type position struct {
	chunk string
	index int
}

// memTable stands in for a database table keyed by source position: a redelivered event
// replaces nothing.
type memTable struct {
	mu   sync.Mutex
	byAt map[position]Event
}

func newMemTable() *memTable { return &memTable{byAt: map[position]Event{}} }

func (t *memTable) HandleBatch(_ context.Context, batch []pipeline.Message[Event], _ pipeline.BatchInfo) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range batch {
		at := position{batch[i].Metadata.Stream, int(batch[i].Metadata.Position)}
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

// pgTable writes purchases to PostgreSQL: each batch is copied into a temporary staging table
// and moved into quickstart_purchases with an insert-if-absent keyed by source position, in one
// transaction.
type pgTable struct {
	pool     *pgxpool.Pool
	inserted atomic.Int64
}

const pgTableName = "quickstart_purchases"

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
		stream      text   NOT NULL,
		chunk_start text   NOT NULL,
		idx         int    NOT NULL,
		id          bigint NOT NULL,
		user_id     text   NOT NULL,
		amount      double precision NOT NULL,
		PRIMARY KEY (stream, chunk_start, idx)
	)`)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("-pg: create table: %w", err)
	}
	return &pgTable{pool: pool}, nil
}

func (t *pgTable) close() { t.pool.Close() }

var pgColumns = []string{"stream", "chunk_start", "idx", "id", "user_id", "amount"}

func (t *pgTable) HandleBatch(ctx context.Context, batch []pipeline.Message[Event], _ pipeline.BatchInfo) error {
	rows := make([][]any, len(batch))
	for i := range batch {
		m := &batch[i]
		rows[i] = []any{m.Metadata.Stream, "", int32(m.Metadata.Position), m.Data.ID, m.Data.User, m.Data.Amount}
	}
	return pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE staging (LIKE `+pgTableName+`) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staging"}, pgColumns, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO `+pgTableName+` SELECT * FROM staging ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		t.inserted.Add(tag.RowsAffected())
		return nil
	})
}

func (t *pgTable) rows() int64      { return t.inserted.Load() }
func (t *pgTable) describe() string { return "PostgreSQL table " + pgTableName + ", rows inserted" }
