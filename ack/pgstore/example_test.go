package pgstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/ack/pgstore"
)

// A store over a pool: the committed position of the pipeline "orders" reading a stream,
// saved and loaded; an older position saved late does not move it back. (It needs a
// PostgreSQL server, so it has no Output to check.)
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.New(ctx, pool, pgstore.Options{}) // table sluice_checkpoints, created if missing
	if err != nil {
		log.Fatal(err)
	}
	key := ack.CheckpointKey("orders", "/v1/stream/orders") // the stream's path: no credentials
	// 250 messages done after offset …1024, the first not done being the stream's 1250th.
	done := ack.Position{Offset: "0000000000000000_0000000000001024", Skip: 250, Seq: 1250}
	_ = store.Save(ctx, key, done.String())
	_ = store.Save(ctx, key, "0000000000000000_0000000000000512") // late and older: ignored
	saved, found, err := store.Load(ctx, key)
	fmt.Println(saved, found, err) // 0000000000000000_0000000000001024,250,1250 true <nil>
	pos, err := ack.ParsePosition(saved)
	fmt.Println(pos.Offset, pos.Skip, pos.Seq, err) // resume: read from Offset, skip Skip messages
}
