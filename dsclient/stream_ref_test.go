package dsclient_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
)

func TestRefLifecycleBytes(t *testing.T) {
	srv := ref(t)
	ctx := context.Background()
	s := ds.NewStream(srv.StreamURL(name(t)), ds.WithContentType("text/plain"))
	cr, err := s.Create(ctx, ds.CreateOptions{})
	if err != nil || !cr.Created {
		t.Fatalf("create: %+v %v", cr, err)
	}
	cr, err = s.Create(ctx, ds.CreateOptions{})
	if err != nil || cr.Created {
		t.Fatalf("idempotent create: %+v %v", cr, err)
	}
	if _, err := s.Create(ctx, ds.CreateOptions{ContentType: "application/json"}); !errors.Is(err, ds.ErrConflict) {
		t.Fatalf("create with other config: %v, want ErrConflict", err)
	}
	a1, err := s.Append(ctx, []byte("hello "), ds.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, []byte("world"), ds.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := s.ReadAll(ctx, ds.ReadOptions{})
	if err != nil || string(res.Data) != "hello world" || !res.Last.UpToDate || res.Last.Closed {
		t.Fatalf("read all: %q %+v %v", res.Data, res.Last, err)
	}
	res2, err := s.ReadAll(ctx, ds.ReadOptions{Offset: a1.NextOffset})
	if err != nil || string(res2.Data) != "world" {
		t.Fatalf("read from offset: %q %v", res2.Data, err)
	}
	m, err := s.Head(ctx)
	if err != nil || m.NextOffset != res.Last.NextOffset || !strings.HasPrefix(m.ContentType, "text/plain") || m.Closed {
		t.Fatalf("head: %+v %v", m, err)
	}
	cl, err := s.CloseStream(ctx)
	if err != nil || !cl.Closed || cl.NextOffset != m.NextOffset {
		t.Fatalf("close: %+v %v", cl, err)
	}
	if _, err := s.CloseStream(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
	_, err = s.Append(ctx, []byte("late"), ds.AppendOptions{})
	var e *ds.Error
	if !errors.Is(err, ds.ErrStreamClosed) || !errors.As(err, &e) || e.NextOffset != m.NextOffset {
		t.Fatalf("append after close: %v", err)
	}
	if err := s.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = s.Head(ctx)
	if !errors.Is(err, ds.ErrNotFound) || !strings.Contains(err.Error(), s.URL()) {
		t.Fatalf("head after delete: %v", err)
	}
}

type event struct {
	N int    `json:"n"`
	S string `json:"s"`
}

func TestRefJSONItems(t *testing.T) {
	srv := ref(t)
	ctx := context.Background()
	s := ds.NewStream(srv.StreamURL(name(t)), ds.WithContentType("application/json"))
	if _, err := s.Create(ctx, ds.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendJSON(ctx, event{1, "a"}, ds.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendJSON(ctx, []int{1, 2}, ds.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.AppendJSONBatch(ctx, s, []event{{2, "b"}, {3, "c"}}, ds.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	var raws []string
	for it, err := range s.RawItems(ctx, ds.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, string(it.Value))
	}
	want := `{"n":1,"s":"a"}|[1,2]|{"n":2,"s":"b"}|{"n":3,"s":"c"}`
	if got := strings.Join(raws, "|"); got != want {
		t.Fatalf("raw items %s, want %s", got, want)
	}
	var ns []int
	for it, err := range ds.JSONItems[event](ctx, s, ds.ReadOptions{}) {
		if err != nil {
			if errors.Is(err, ds.ErrDecode) && it.Index == 1 {
				continue // [1,2] is not an event
			}
			t.Fatal(err)
		}
		ns = append(ns, it.Value.N)
	}
	if len(ns) != 3 || ns[2] != 3 {
		t.Fatalf("decoded %v", ns)
	}
}

func TestRefLongPoll(t *testing.T) {
	srv := ref(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := ds.NewStream(srv.StreamURL(name(t)), ds.WithContentType("text/plain"))
	if _, err := s.Create(ctx, ds.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []ds.LiveMode{ds.LiveLongPoll, ds.LiveAuto, ds.LiveSSE} {
		t.Run(mode.String(), func(t *testing.T) {
			m, err := s.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			r := s.Reader(ctx, ds.ReadOptions{Offset: m.NextOffset, Live: mode})
			defer r.Close()
			got := make(chan string, 1)
			errc := make(chan error, 1)
			go func() {
				for {
					c, err := r.Next()
					if err != nil {
						errc <- err
						return
					}
					b, err := c.ReadAll()
					if err != nil {
						errc <- err
						return
					}
					if len(b) > 0 {
						got <- string(b)
						return
					}
				}
			}()
			if _, err := s.Append(ctx, []byte("x-"+mode.String()), ds.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			select {
			case g := <-got:
				if !strings.HasSuffix(g, "x-"+mode.String()) {
					t.Fatalf("got %q", g)
				}
			case err := <-errc:
				t.Fatal(err)
			}
		})
	}
}

func TestRefClosedEndsLiveReads(t *testing.T) {
	srv := ref(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, mode := range []ds.LiveMode{ds.LiveOff, ds.LiveLongPoll, ds.LiveAuto, ds.LiveSSE} {
		t.Run(mode.String(), func(t *testing.T) {
			s := ds.NewStream(srv.StreamURL(name(t)), ds.WithContentType("application/json"))
			if _, err := s.Create(ctx, ds.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if _, err := s.AppendJSON(ctx, event{N: i}, ds.AppendOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Append(ctx, []byte(`{"n":3}`), ds.AppendOptions{Close: true}); err != nil {
				t.Fatal(err)
			}
			r := s.Reader(ctx, ds.ReadOptions{Live: mode})
			defer r.Close()
			n, sawClosed := 0, false
			for {
				c, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				for {
					var e event
					if err := c.DecodeItem(&e); err == io.EOF {
						break
					} else if err != nil {
						t.Fatal(err)
					}
					if e.N != n {
						t.Fatalf("item %d has n=%d", n, e.N)
					}
					n++
				}
				sawClosed = sawClosed || c.Closed()
			}
			if n != 4 || !sawClosed {
				t.Fatalf("read %d items, closed=%v", n, sawClosed)
			}
		})
	}
}

func TestRefSSEBinary(t *testing.T) {
	srv := ref(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := ds.NewStream(srv.StreamURL(name(t)))
	if _, err := s.Create(ctx, ds.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := s.Reader(ctx, ds.ReadOptions{Offset: ds.Now, Live: ds.LiveSSE})
	defer r.Close()
	if c, err := r.Next(); err != nil || !c.UpToDate() {
		t.Fatalf("first chunk: %v", err)
	}
	want := []byte{0, 1, 2, 0xff, '\n', '\r', 0x80}
	if _, err := s.Append(ctx, want, ds.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		c, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			if string(b) != string(want) {
				t.Fatalf("got %x want %x", b, want)
			}
			return
		}
	}
}
