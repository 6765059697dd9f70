package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/ack/pgstore"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// pgProxy forwards TCP connections to PostgreSQL, and can be cut: while it is down, every
// connection it carried is closed and new ones are refused, as when the database is stopped.
type pgProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
	})
	return p
}

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *pgProxy) forward(c net.Conn) {
	if !p.track(c) {
		c.Close()
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(up) {
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// track records c, unless the proxy is down.
func (p *pgProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *pgProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

// PostgreSQL unreachable for 10 s under a running pipeline with the default options: no
// message reaches the failure handler but the one bad event, the saved checkpoint is never
// ahead of the rows, and afterwards every row is there once; the bad event is dead-lettered
// and committed past.
func TestPostgresOutageLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the outage lasts 10 s (go test without -short runs it)")
	}
	dsn := testDSN(t)
	target, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPGProxy(t, target.Host)
	viaProxy := *target
	viaProxy.Host = proxy.ln.Addr().String()

	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 64 << 10})
	const n = 40_000
	streamURL := srv.StreamURL("events")
	if err := writeSample(context.Background(), streamURL, n); err != nil {
		t.Fatal(err)
	}
	if _, err := dsclient.NewStream(streamURL).AppendJSON(context.Background(), Event{ID: n, Type: "purchase"}, dsclient.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("pg_outage_test_%d", rand.Uint32())
	direct, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	t.Cleanup(func() {
		direct.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
		direct.Exec(context.Background(), "DELETE FROM sluice_checkpoints WHERE pipeline LIKE $1", table+"%")
	})
	if err := createTable(context.Background(), direct, table); err != nil {
		t.Fatal(err)
	}
	cfg := Config{DSN: viaProxy.String(), URL: streamURL, Name: table + "-pipeline", Table: table, BatchSize: 200, Concurrency: 2}

	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := run(context.Background(), cfg, io.Discard)
		done <- outcome{res, err}
	}()

	// checkNotAhead fails if an event before the saved checkpoint is missing from the table
	// (the bad event, at position n, has no row).
	store, err := pgstore.New(context.Background(), direct, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(streamURL)
	key := ack.CheckpointKey(cfg.Name, u.Path)
	checkNotAhead := func() (rows int64) {
		t.Helper()
		ctx := context.Background()
		var missing int64 = -1
		saved, found, err := store.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var seq int64
		if found {
			pos, err := ack.ParsePosition(saved)
			if err != nil {
				t.Fatal(err)
			}
			seq = pos.Seq
		}
		if err := direct.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), least($1::bigint, $2::bigint) - count(*) FILTER (WHERE position < $1) FROM %s`, table),
			seq, n).Scan(&rows, &missing); err != nil {
			t.Fatal(err)
		}
		if missing != 0 {
			t.Fatalf("checkpoint %q is ahead of the rows: %d of the events before it are missing", saved, missing)
		}
		return rows
	}

	// Cut the database off once the pipeline has written some rows, for 10 s.
	for checkNotAhead() == 0 {
		select {
		case o := <-done:
			t.Fatalf("the run ended before the outage: %+v, %v", o.res, o.err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	proxy.setDown(true)
	cut := time.Now()
	for time.Since(cut) < 10*time.Second {
		checkNotAhead()
		select {
		case o := <-done:
			t.Fatalf("the run ended during the outage: %+v, %v", o.res, o.err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	proxy.setDown(false)

	var o outcome
	select {
	case o = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the run did not finish after the database came back")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.res.BadData != 1 {
		t.Fatalf("%d messages reached the failure handler, want only the bad event", o.res.BadData)
	}
	if rows := checkNotAhead(); rows != n {
		t.Fatalf("%d rows after the outage, want %d", rows, n)
	}
	if _, distinct := count(t, dsn, table); distinct != n {
		t.Fatalf("%d distinct events, want %d", distinct, n)
	}
	head, err := dsclient.NewStream(streamURL).Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if o.res.Committed != head.NextOffset {
		t.Fatalf("committed %q, want the tail %q: the bad event must be committed past", o.res.Committed, head.NextOffset)
	}
}
