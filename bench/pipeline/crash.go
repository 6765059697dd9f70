package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/bench/internal/chart"
	"github.com/sluice-go/sluice/bench/internal/decoders"
	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// The crash-recovery part (issue 12): a child process runs the catch-up pipeline over one
// response of a long stream with a file checkpoint store (default CheckpointInterval, 1s) and
// reports every batch it handled; the parent SIGKILLs it once half the events are handled,
// reads what the pipe still holds (the exact count at death), then runs a second child from
// the checkpoint to the end. Redelivered = first + second - n; every id is tallied, so that
// a missing event fails the run. The bound: the pipeline's MaxInFlight plus one checkpoint
// interval's worth of events at the first child's measured rate.

// crashCfg configures a crash child.
type crashCfg struct {
	N        int           `json:"n"`
	Dir      string        `json:"dir"`      // the checkpoint store's directory
	Decoder  string        `json:"decoder"`  // a decoders name
	Interval time.Duration `json:"interval"` // the producer's CheckpointInterval; 0: its default, 1s
}

// crashKey is the checkpoint key of the crash runs.
const crashKey = "bench-crash"

// A crash child writes frames to stdout: a kind byte, a 4-byte big-endian length, and the
// payload. One write per frame, so that a killed child leaves whole frames (and at most one
// cut frame, which is dropped).
const (
	frameInfo  = 'I' // JSON crashInfo, before the first batch
	frameBatch = 'B' // the batch's ids, sorted, as uvarint deltas
	frameEnd   = 'E' // JSON crashEnd, at the end of a run that was not killed
)

type crashInfo struct {
	MaxInFlight int    `json:"max_in_flight"`
	Interval    string `json:"interval"`
}

type crashEnd struct {
	Err string `json:"err,omitempty"`
}

func writeFrame(w io.Writer, kind byte, payload []byte) error {
	b := make([]byte, 5, 5+len(payload))
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	_, err := w.Write(append(b, payload...))
	return err
}

// encodeIDs sorts ids and encodes them as uvarint deltas.
func encodeIDs(ids []int64) []byte {
	slices.Sort(ids)
	out := make([]byte, 0, 2*len(ids)+8)
	prev := int64(0)
	for _, id := range ids {
		out = binary.AppendUvarint(out, uint64(id-prev))
		prev = id
	}
	return out
}

func decodeIDs(b []byte, fn func(id int64)) error {
	prev := int64(0)
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad id frame")
		}
		prev += int64(d)
		fn(prev)
		b = b[n:]
	}
	return nil
}

// crashChildMain runs one crash child (the -child-crash mode): the catch-up pipeline with the
// file checkpoint store, until the end of the stream or until it is killed.
func crashChildMain(streamURL, cfgJSON string) {
	var cfg crashCfg
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fatalf("-child-cfg: %v", err)
	}
	out := os.Stdout
	err := runCrashChild(context.Background(), streamURL, cfg, out)
	end, _ := json.Marshal(crashEnd{Err: errString(err)})
	writeFrame(out, frameEnd, end)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func runCrashChild(ctx context.Context, streamURL string, cfg crashCfg, out io.Writer) error {
	d, ok := decoders.ByName(cfg.Decoder)
	if !ok {
		return fmt.Errorf("unknown decoder %q", cfg.Decoder)
	}
	store, err := ack.NewFileStore(cfg.Dir)
	if err != nil {
		return err
	}
	c := httpClient()
	defer c.CloseIdleConnections()
	o := producerOptions(dsclient.NewStream(streamURL, dsclient.WithHTTPClient(c)), d)
	o.Name = "bench-crash"
	o.Checkpoints = store
	o.CheckpointKey = crashKey
	o.CheckpointInterval = cfg.Interval
	p, err := ds.NewProducer(o)
	if err != nil {
		return err
	}
	var mu sync.Mutex // one frame at a time
	var info sync.Once
	var pl *pipeline.Pipeline[dsload.Event]
	pl, err = pipeline.New(pipeline.Options[dsload.Event]{
		Name:     "bench-crash",
		Producer: p,
		Processors: []pipeline.ProcessorOptions[dsload.Event]{{Concurrency: 4,
			Handler: pipeline.HandlerFunc[dsload.Event](func(ctx context.Context, m *pipeline.Message[dsload.Event]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[dsload.Event]{"sink": {BatchSize: 1000, BatchTimeout: 50 * time.Millisecond,
			Handler: pipeline.BatchHandlerFunc[dsload.Event](func(ctx context.Context, ms []pipeline.Message[dsload.Event], _ pipeline.BatchInfo) error {
				ids := make([]int64, len(ms))
				for i := range ms {
					ids[i] = ms[i].Data.ID
				}
				mu.Lock()
				defer mu.Unlock()
				info.Do(func() {
					b, _ := json.Marshal(crashInfo{MaxInFlight: pl.MaxInFlight(), Interval: crashInterval(cfg.Interval).String()})
					writeFrame(out, frameInfo, b)
				})
				return writeFrame(out, frameBatch, encodeIDs(ids))
			})}},
		DefaultBatcher:  "sink",
		ShutdownTimeout: time.Minute,
	})
	if err != nil {
		return err
	}
	return pl.Run(ctx)
}

// crashRun is one round of the crash part on one server.
type crashRun struct {
	first, second int64 // events handled by each child
	atKill        int64 // events handled when the parent decided to kill
	checkpoint    ack.Position
	maxInFlight   int
	rate          float64 // the first child's events per second, first batch to kill
	redelivered   int64
	bound         float64
	err           error
}

// childReader reads a crash child's frames into a tally of the ids.
type childReader struct {
	counts  []uint8 // deliveries per id, over both children
	handled int64   // events of this child
	dups    int64   // ids this child delivered twice
	info    crashInfo
	end     *crashEnd
	first   time.Time // arrival of the first batch
}

// read consumes frames until EOF, calling onBatch after each batch frame.
func (cr *childReader) read(r io.Reader, onBatch func()) error {
	br := bufio.NewReaderSize(r, 1<<16)
	var hdr [5]byte
	mine := make([]bool, len(cr.counts)) // the ids this child delivered
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil // a cut frame of a killed child is dropped
			}
			return err
		}
		payload := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.ReadFull(br, payload); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil
			}
			return err
		}
		switch hdr[0] {
		case frameInfo:
			if err := json.Unmarshal(payload, &cr.info); err != nil {
				return err
			}
		case frameEnd:
			cr.end = &crashEnd{}
			if err := json.Unmarshal(payload, cr.end); err != nil {
				return err
			}
		case frameBatch:
			if cr.first.IsZero() {
				cr.first = time.Now()
			}
			err := decodeIDs(payload, func(id int64) {
				cr.handled++
				if id < 0 || id >= int64(len(cr.counts)) {
					cr.dups++ // counted as a breach below
					return
				}
				if mine[id] {
					cr.dups++
				}
				mine[id] = true
				if cr.counts[id] < 255 {
					cr.counts[id]++
				}
			})
			if err != nil {
				return err
			}
			if onBatch != nil {
				onBatch()
			}
		default:
			return fmt.Errorf("unknown frame kind %q", hdr[0])
		}
	}
}

// runCrash runs one round: a child killed at half the stream, then a child to the end.
// crashInterval is the checkpoint interval a crash child runs with.
func crashInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Second
	}
	return d
}

func runCrash(ctx context.Context, streamURL string, n int, decoder string, interval time.Duration) crashRun {
	dir, err := os.MkdirTemp("", "sluice-bench-crash-")
	if err != nil {
		return crashRun{err: err}
	}
	defer os.RemoveAll(dir)
	cfg, _ := json.Marshal(crashCfg{N: n, Dir: dir, Decoder: decoder, Interval: interval})
	counts := make([]uint8, n)
	var res crashRun

	// The first child, killed once half the events are handled.
	first := &childReader{counts: counts}
	var killAt time.Time
	err = runChild(ctx, streamURL, string(cfg), func(cmd *exec.Cmd, stdout io.Reader) error {
		killed := false
		return first.read(stdout, func() {
			if !killed && first.handled >= int64(n/2) {
				killed = true
				killAt = time.Now()
				res.atKill = first.handled
				cmd.Process.Kill() // SIGKILL
			}
		})
	})
	res.first, res.maxInFlight = first.handled, first.info.MaxInFlight
	switch {
	case err == nil && first.end != nil:
		err = fmt.Errorf("the first child ended (%q) before it was killed", first.end.Err)
	case err == nil && killAt.IsZero():
		err = errors.New("the first child was not killed")
	}
	if err != nil {
		res.err = err
		return res
	}
	if el := killAt.Sub(first.first).Seconds(); el > 0 {
		res.rate = float64(res.atKill) / el
	}
	store, err := ack.NewFileStore(dir)
	if err != nil {
		res.err = err
		return res
	}
	if v, ok, err := store.Load(ctx, crashKey); err == nil && ok {
		res.checkpoint, _ = ack.ParsePosition(v)
	} else {
		res.checkpoint = ack.Position{Offset: "-1", Seq: 0}
	}

	// The second child, from the checkpoint to the end.
	second := &childReader{counts: counts}
	err = runChild(ctx, streamURL, string(cfg), func(_ *exec.Cmd, stdout io.Reader) error {
		return second.read(stdout, nil)
	})
	res.second = second.handled
	switch {
	case err == nil && second.end == nil:
		err = errors.New("the second child ended without its end frame")
	case err == nil && second.end.Err != "":
		err = errors.New("second child: " + second.end.Err)
	}
	if err == nil {
		err = tallyVerdict(counts, first.dups+second.dups)
	}
	res.err = err
	res.redelivered = res.first + res.second - int64(n)
	res.bound = float64(res.maxInFlight) + res.rate*crashInterval(interval).Seconds()
	return res
}

// tallyVerdict checks that every event was delivered at least once, at most twice (once by
// each child), and that no child delivered an event twice.
func tallyVerdict(counts []uint8, dups int64) error {
	var missing, more int64
	for _, c := range counts {
		switch {
		case c == 0:
			missing++
		case c > 2:
			more++
		}
	}
	switch {
	case missing > 0:
		return fmt.Errorf("%d events never delivered", missing)
	case dups > 0:
		return fmt.Errorf("%d events delivered twice by one child (or outside the stream)", dups)
	case more > 0:
		return fmt.Errorf("%d events delivered more than twice", more)
	}
	return nil
}

// runChild starts this binary as a crash child and hands its stdout to consume; it returns
// consume's error, or the child's exit error unless the child was killed.
func runChild(ctx context.Context, streamURL, cfg string, consume func(cmd *exec.Cmd, stdout io.Reader) error) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-child-crash", streamURL, "-child-cfg", cfg)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	cerr := consume(cmd, stdout)
	if cerr != nil {
		cmd.Process.Kill()
		io.Copy(io.Discard, stdout)
	}
	werr := cmd.Wait()
	if cerr != nil {
		return cerr
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) && !ee.Exited() { // killed by the parent
		return nil
	}
	return werr
}

// crashPart prints the crash-recovery table: one row per server and round.
func crashPart(ctx context.Context, srvs []*dsload.Server, streams *filled, n, rounds int, decoder string, interval time.Duration, pngBase, machine string) {
	iv := crashInterval(interval)
	fmt.Printf("\n== crash recovery: SIGKILL at half of a %d-event catch-up served as one response, then a run from the checkpoint to the end (ack.FileStore, CheckpointInterval %v, decoder %s), %d round(s)\n", n, iv, decoder, rounds)
	tw := newTable()
	fmt.Fprintln(tw, "server\tround\thandled at kill\tcheckpoint at kill\tfirst run\tsecond run\tredelivered\tbound\tmsg/s before kill\tnothing missing\t")
	var notes, targets []string
	var rows []chart.Row
	for _, srv := range srvs {
		u := streams.get(ctx, srv, n)
		for r := range rounds {
			res := runCrash(ctx, u, n, decoder, interval)
			check := "ok"
			if res.err != nil {
				check = "INVALID"
				notes = append(notes, fmt.Sprintf("%s round %d: %v", srv.Name, r+1, res.err))
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%s\t\n", srv.Name, r+1, res.atKill, res.checkpoint.Seq, res.first, res.second, res.redelivered, res.bound, res.rate, check)
			ok := res.err == nil && float64(res.redelivered) <= res.bound
			targets = append(targets, fmt.Sprintf("target (%s, round %d): redelivered %d <= MaxInFlight %d + %v x %.0f msg/s = %.0f: %s",
				srv.Name, r+1, res.redelivered, res.maxInFlight, iv, res.rate, res.bound, passFail(ok)))
			rows = append(rows,
				chart.Row{Label: fmt.Sprintf("%s #%d redelivered", srv.Name, r+1), Value: float64(res.redelivered), Highlight: true},
				chart.Row{Label: fmt.Sprintf("%s #%d bound", srv.Name, r+1), Value: res.bound})
		}
	}
	tw.Flush()
	for _, s := range notes {
		fmt.Println("  INVALID:", s)
	}
	for _, s := range targets {
		fmt.Println(s)
	}
	fmt.Println("redelivered = first run + second run - events; checkpoint at kill = the saved position's stable number (messages committed)")
	fmt.Println("the throughput cost of committing inside responses: ./compare.sh pipeline (target: the current producer within 5% of the base revision's catch-up throughput)")
	writeCharts(pngBase, []string{"crash"}, []chart.Chart{{
		Title: fmt.Sprintf("crash recovery: redelivered messages after a SIGKILL at 50%% of %d events\n%s", n, machine),
		Unit:  "messages", Rows: rows,
	}})
}
