// Package pgstore is an [ack.CheckpointStore] backed by PostgreSQL, through pgx.
//
// A Store keeps one row per checkpoint key in a table (default "sluice_checkpoints") that
// [New] creates if it is missing:
//
//	CREATE TABLE IF NOT EXISTS sluice_checkpoints (
//		key        text PRIMARY KEY,             -- ack.CheckpointKey(pipeline, source)
//		pipeline   text NOT NULL,                -- the key's pipeline part
//		source     text NOT NULL,                -- the key's source part: the stream's path
//		"offset"   text COLLATE "C" NOT NULL,    -- the committed position, encoded
//		updated_at timestamptz NOT NULL DEFAULT now()
//	)
//
// so a checkpoint can be read by pipeline name and stream with plain SQL. The "offset" column
// holds the checkpoint encoding of an [ack.Position]: a bare offset, as versions before
// positions saved it (their rows need no migration), or "offset,skip,seq" for a position
// inside a response; split_part("offset", ',', 1) is the offset either way.
//
// # Positions never move backwards
//
// A Save replaces the saved value only when [ack.Supersedes] allows it, the rule every
// checkpoint store applies: positions ordered by offset (byte-wise, as the Durable Streams
// protocol orders them) and then by the number of messages done after it, a saved "-1" or
// "now" always replaceable, a sentinel never replacing a real position, and values that are
// not positions simply replaced. A save from a stale process, or one that arrives late,
// changes nothing; such a refused save is not an error, since the store already holds a
// later position. Saves are atomic: a Load sees the old value or the new one.
//
// Save reads the row, decides in Go with [ack.Supersedes], and writes with a compare and
// swap: an INSERT … ON CONFLICT DO NOTHING when there is no row, else an UPDATE … WHERE
// "offset" = the value it compared with. If another save changed the row in between, the
// write touches no row and Save reads and decides again. Each statement commits on its own,
// no lock is held across round trips, and a [DB] needs no transactions (a pgx.Tx works as
// before). The order is not written again in SQL on purpose: parsing the encoding in SQL
// (split_part, a numeric comparison of the skip, the sentinel cases, the values that are
// not positions, which must never make a statement fail) would be a second definition of
// the rule that could drift from the one the memory and file stores apply; here the three
// stores share one, and a test checks this one against it. The read costs one round trip
// without a commit; a save's time is dominated by the commit's flush to disk (about 3.5 ms
// per save on the development machine, as with the single upsert before).
//
// Versions before positions saved with a single upsert that compared whole values byte-wise.
// One still running during an upgrade cannot move a position saved in the new form
// backwards: "offset,skip,seq" sorts after its offset and before every later offset,
// since ',' sorts before every character the servers use in offsets.
//
// # Save deadlines
//
// A context carrying a save deadline (ack.WithSaveDeadline) makes every statement of a
// Save conditional on the database's statement time being before it: a save that reaches
// PostgreSQL later — sent by a process that was paused after it decided to save — changes
// nothing and returns an error wrapping ack.ErrSaveDeadline. The subscription worker of
// package source/durablestreams passes its claim's lease this way, so that a worker paused
// past its lease moves no checkpoint of the streams another worker now holds. The deadline
// comes from the caller's clock and is compared with the database's: keep them in step
// (NTP) to well within the margin the caller leaves (a fifth of the lease, by default).
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
// Either way nothing unsafe is saved: a failed Save that lands late records a position the
// pipeline had committed, and it cannot move a later one backwards (its UPDATE applies only
// to the value it compared with). Like any database
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
