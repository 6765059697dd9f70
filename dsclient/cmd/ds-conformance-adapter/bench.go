package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
)

// benchmark times one operation of the suite's benchmark mode. Each operation makes exactly
// the requests of the scenario that names it (the suite's src/benchmark-scenarios.ts and the
// setup of src/benchmark-runner.ts), and the time covers all of them:
//
//   - create (latency-create): one PUT.
//   - append (latency-append): one POST to the stream the runner created.
//   - read (latency-read): one GET from the operation's offset (one response, read whole).
//   - roundtrip (latency-roundtrip, long-poll; streaming-sse-latency, sse): a PUT creates the
//     iteration's stream; a live read starts from its tail (long-poll: GET live=long-poll;
//     SSE: the client's catch-up GET, which at the tail of a new stream answers at once, then
//     GET live=sse); the POST is sent only once the live request is on the wire, and the time
//     ends when the appended data arrives through that live request.
//   - throughput_append (throughput-*-messages): a PUT the first time the adapter sees the
//     path (the runner does not create that stream), then the Writer's POSTs.
//   - throughput_read (throughput-read): catch-up GETs to the tail, every message decoded.
func (a *adapter) benchmark(c *command) any {
	op := c.Operation
	if op == nil {
		return errorResult{Type: "error", CommandType: c.Type, ErrorCode: "INVALID_ARGUMENT", Message: "no operation"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	metrics := map[string]any{}
	start := time.Now()
	s := a.stream(op.Path, nil)
	var err error
	switch op.Op {
	case "create":
		ct := orDefault(op.ContentType)
		if _, err = s.Create(ctx, ds.CreateOptions{ContentType: ct}); err == nil {
			a.ctypes[op.Path] = ct
		}
	case "append":
		_, err = s.Append(ctx, a.benchPayload(op), ds.AppendOptions{})
		metrics["bytesTransferred"] = op.Size
	case "read":
		o := ds.ReadOptions{}
		if op.Offset != nil {
			o.Offset = ds.Offset(*op.Offset)
		}
		var n int
		n, err = readOne(ctx, s, o)
		metrics["bytesTransferred"] = n
	case "roundtrip":
		ct := orDefault(op.ContentType)
		var cr ds.CreateResult
		if cr, err = s.Create(ctx, ds.CreateOptions{ContentType: ct}); err != nil {
			break
		}
		a.ctypes[op.Path] = ct
		mode := ds.LiveLongPoll
		if op.Live == "sse" {
			mode = ds.LiveSSE
		}
		var n int
		n, err = roundtrip(ctx, a.stream(op.Path, nil), cr.NextOffset, mode, a.benchPayload(op))
		metrics["bytesTransferred"] = op.Size + n
	case "throughput_append":
		if err = a.ensure(ctx, op.Path); err != nil {
			break
		}
		var w *ds.Writer
		// Linger -1: a batch leaves as soon as a request slot is free (the suite's lingerMs 0).
		if w, err = ds.NewWriter(a.stream(op.Path, nil), ds.WriterOptions{
			ID: "bench-producer-" + strconv.FormatInt(time.Now().UnixNano(), 36), Linger: -1}); err != nil {
			break
		}
		p := a.benchPayload(op)
		for i := 0; i < op.Count && err == nil; i++ {
			err = w.Append(ctx, p)
		}
		if cerr := w.Close(ctx); err == nil {
			err = cerr
		}
		metrics["bytesTransferred"] = op.Count * op.Size
		metrics["messagesProcessed"] = op.Count
	case "throughput_read":
		var count, nbytes int
		count, nbytes, err = readDecoded(ctx, s)
		metrics["bytesTransferred"] = nbytes
		metrics["messagesProcessed"] = count
	default:
		return errorResult{Type: "error", CommandType: c.Type, ErrorCode: "NOT_SUPPORTED", Message: "unknown benchmark operation " + op.Op}
	}
	if err != nil {
		return errResult(c.Type, err)
	}
	return result{Type: "benchmark", Success: true, IterationID: c.IterationID,
		DurationNs: strconv.FormatInt(time.Since(start).Nanoseconds(), 10), Metrics: metrics}
}

// benchPayload returns an operation's message of op.Size bytes: a JSON string for a JSON
// stream, else bytes.
func (a *adapter) benchPayload(op *benchOp) []byte {
	if strings.HasPrefix(a.ctypes[op.Path], "application/json") {
		return []byte(`"` + strings.Repeat("*", max(op.Size-2, 0)) + `"`)
	}
	return bytes.Repeat([]byte{42}, op.Size)
}

// ensure creates the stream at path the first time the adapter sees it (one PUT; a stream
// that exists with another content type is looked up with one HEAD), and then nothing.
func (a *adapter) ensure(ctx context.Context, path string) error {
	if _, ok := a.ctypes[path]; ok {
		return nil
	}
	ct := orDefault("")
	_, err := a.stream(path, nil).Create(ctx, ds.CreateOptions{ContentType: ct})
	if errors.Is(err, ds.ErrConflict) {
		var info ds.StreamInfo
		if info, err = a.stream(path, nil).Head(ctx); err == nil {
			ct = info.ContentType
		}
	}
	if err != nil {
		return err
	}
	a.ctypes[path] = ct
	return nil
}

// readOne makes one catch-up read (one GET) and returns the size of its body.
func readOne(ctx context.Context, s *ds.Stream, o ds.ReadOptions) (int, error) {
	r := s.Reader(ctx, o)
	defer r.Close()
	c, err := r.Next()
	if err != nil {
		return 0, err
	}
	b, err := c.ReadAll()
	return len(b), err
}

// readDecoded reads the stream to its tail, decoding every JSON message (as the suite's
// scenario does: "JSON parsing and iteration speed"); a byte stream's chunks count as one
// message each. It returns the messages and their bytes.
func readDecoded(ctx context.Context, s *ds.Stream) (count, nbytes int, err error) {
	r := s.Reader(ctx, ds.ReadOptions{})
	defer r.Close()
	var v any
	for {
		c, err := r.Next()
		if err == io.EOF {
			return count, nbytes, nil
		}
		if err != nil {
			return count, nbytes, err
		}
		if !c.IsJSON() {
			b, err := c.ReadAll()
			if err != nil {
				return count, nbytes, err
			}
			if len(b) > 0 {
				count++
				nbytes += len(b)
			}
			continue
		}
		for {
			item, err := c.NextItem()
			if err == io.EOF {
				break
			}
			if err != nil {
				return count, nbytes, err
			}
			v = nil
			if err := json.Unmarshal(item, &v); err != nil {
				return count, nbytes, err
			}
			count++
			nbytes += len(item)
		}
	}
}

// roundtrip starts a live read of s from tail, appends data once the live request has been
// written, and returns the size of the first data the live read delivers.
func roundtrip(ctx context.Context, s *ds.Stream, tail ds.Offset, mode ds.LiveMode, data []byte) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var armed atomic.Bool
	written := make(chan struct{}, 1)
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
		if armed.Load() {
			select {
			case written <- struct{}{}:
			default:
			}
		}
	}}
	r := s.Reader(httptrace.WithClientTrace(ctx, trace), ds.ReadOptions{Offset: tail, Live: mode})
	defer r.Close()
	if mode == ds.LiveSSE {
		// The SSE read begins with a catch-up request; at the tail it answers at once, up to
		// date, and the next request is the SSE one.
		if _, err := r.Next(); err != nil {
			return 0, err
		}
	}
	armed.Store(true)
	type got struct {
		n   int
		err error
	}
	done := make(chan got, 1)
	go func() {
		for {
			c, err := r.Next()
			if err != nil {
				done <- got{0, err}
				return
			}
			b, err := c.ReadAll()
			if n := dataLen(c, b); n > 0 || err != nil {
				done <- got{n, err}
				return
			}
		}
	}()
	select {
	case <-written:
	case g := <-done: // the live read ended before its request was written
		if g.err == nil {
			g.err = errors.New("live read returned before the append")
		}
		return 0, g.err
	}
	if _, err := s.Append(ctx, data, ds.AppendOptions{}); err != nil {
		cancel()
		<-done
		return 0, err
	}
	g := <-done
	return g.n, g.err
}

// dataLen returns how much data a chunk's bytes hold: 0 for an empty chunk, including an
// empty JSON array.
func dataLen(c *ds.Chunk, b []byte) int {
	if c.IsJSON() && string(bytes.TrimSpace(b)) == "[]" {
		return 0
	}
	return len(b)
}

func orDefault(ct string) string {
	if ct == "" {
		return "application/octet-stream"
	}
	return ct
}
