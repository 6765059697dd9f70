// Package pgstore is an [ack.CheckpointStore] backed by PostgreSQL, through pgx.
//
// A Store keeps one row per checkpoint key in a table (default "sluice_checkpoints") that
// [New] creates if it is missing:
//
//	CREATE TABLE IF NOT EXISTS sluice_checkpoints (
//		key        text PRIMARY KEY,             -- ack.CheckpointKey(pipeline, source)
//		pipeline   text NOT NULL,                -- the key's pipeline part
//		source     text NOT NULL,                -- the key's source part: the stream URL
//		"offset"   text COLLATE "C" NOT NULL,    -- the committed offset
//		updated_at timestamptz NOT NULL DEFAULT now()
//	)
//
// so a checkpoint can be read by pipeline name and stream URL with plain SQL.
//
// # Offsets never move backwards
//
// Durable Streams offsets are opaque, but the protocol orders them lexicographically within a
// stream. Save is one upsert that replaces the saved offset only when the new one sorts
// after it, byte by byte (the column's "C" collation), or when the saved one is a sentinel
// ("-1", "now"): a save from a stale process, or one that arrives late, changes nothing. Such a
// refused save is not an error: the store already holds a later offset. Saves are atomic:
// a Load sees the old offset or the new one.
//
// # Use
//
//	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test")
//	store, err := pgstore.New(ctx, pool, pgstore.Options{})
//	prod, err := durablestreams.NewProducer(durablestreams.ProducerOptions[Order]{
//		Stream: stream, Name: "orders", Checkpoints: store,
//	})
//
// The store uses the pool (or connection, or transaction) it is given and never closes it.
package pgstore
