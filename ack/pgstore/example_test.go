package pgstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/ack/pgstore"
)

// A store over a pool: the committed offset of the pipeline "orders" reading a stream, saved
// and loaded; an older offset saved late does not move it back. (It needs a PostgreSQL
// server, so it has no Output to check.)
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
	key := ack.CheckpointKey("orders", "http://127.0.0.1:4437/v1/stream/orders")
	_ = store.Save(ctx, key, "0000000000000000_0000000000001024")
	_ = store.Save(ctx, key, "0000000000000000_0000000000000512") // late and older: ignored
	off, found, err := store.Load(ctx, key)
	fmt.Println(off, found, err) // 0000000000000000_0000000000001024 true <nil>
}
