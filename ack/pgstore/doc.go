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
// stream. Save is one upsert that replaces the saved offset only when the new one sorts after
// it, byte by byte (the column's "C" collation): a save from a stale process, or one that
// arrives late, changes nothing. Such a refused save is not an error: the store already holds
// a later offset. The sentinels "-1" (the beginning) and "now" (the tail) are no positions: a
// real offset always replaces a saved sentinel, and a sentinel never replaces a real offset
// (although "now" sorts after every offset the servers return). Saves are atomic: a Load sees
// the old offset or the new one.
//
// # Cancellation
//
// Every method honours its context: one that has already ended changes nothing, and one that
// ends while a statement runs makes the method return with an error wrapping the context's
// error. What happens to the statement on the server depends on the pool. By default pgx
// closes the connection at once without telling the server, so a Save that was waiting (on a
// lock, say) may still complete after it returned its error. A pool built with pgconn's
// CancelRequestContextWatcherHandler sends the server a cancel request and waits for its
// answer (at most DeadlineDelay), so the statement is aborted unless it had already finished:
//
//	cfg, err := pgxpool.ParseConfig(dsn)
//	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
//		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 5 * time.Second}
//	}
//	pool, err := pgxpool.NewWithConfig(ctx, cfg)
//
// Either way nothing unsafe is saved: a failed Save that lands late records an offset the
// pipeline had committed, and it cannot move a later one backwards. Like any database
// commit whose reply is lost, a Save that fails may or may not have taken effect; only a
// Save that succeeded is known to be durable.
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
