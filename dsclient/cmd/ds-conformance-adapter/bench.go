package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
)

// benchmark times one operation of the suite's benchmark mode. Operations that need a
// stream create it themselves (creation is idempotent).
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
	ensure := func(ct string) error {
		if ct == "" {
			ct = a.ctypes[op.Path]
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		if _, err := s.Create(ctx, ds.CreateOptions{ContentType: ct}); err != nil && !errors.Is(err, ds.ErrConflict) {
			return err
		}
		if _, ok := a.ctypes[op.Path]; !ok {
			a.ctypes[op.Path] = ct
		}
		s = a.stream(op.Path, nil)
		return nil
	}
	// A JSON stream needs a JSON payload: a string of the requested size.
	payload := func() []byte {
		if strings.HasPrefix(a.ctypes[op.Path], "application/json") {
			return []byte(`"` + strings.Repeat("*", max(op.Size-2, 0)) + `"`)
		}
		return bytes.Repeat([]byte{42}, op.Size)
	}
	var err error
	switch op.Op {
	case "create":
		_, err = s.Create(ctx, ds.CreateOptions{ContentType: orDefault(op.ContentType)})
	case "append":
		if err = ensure(""); err == nil {
			_, err = s.Append(ctx, payload(), ds.AppendOptions{})
			metrics["bytesTransferred"] = op.Size
		}
	case "read":
		o := ds.ReadOptions{}
		if op.Offset != nil {
			o.Offset = ds.Offset(*op.Offset)
		}
		var res ds.ReadResult
		res, err = s.ReadAll(ctx, o)
		metrics["bytesTransferred"] = len(res.Data)
	case "roundtrip":
		if err = ensure(op.ContentType); err != nil {
			break
		}
		var m ds.StreamInfo
		if m, err = s.Head(ctx); err != nil {
			break
		}
		mode := ds.LiveLongPoll
		if op.Live == "sse" {
			mode = ds.LiveSSE
		}
		r := s.Reader(ctx, ds.ReadOptions{Offset: m.NextOffset, Live: mode})
		if _, err = s.Append(ctx, payload(), ds.AppendOptions{}); err != nil {
			r.Close()
			break
		}
		n := 0
		for n == 0 && err == nil {
			var ch *ds.Chunk
			if ch, err = r.Next(); err == nil {
				var b []byte
				b, err = ch.ReadAll()
				n = len(b)
			}
		}
		r.Close()
		metrics["bytesTransferred"] = op.Size + n
	case "throughput_append":
		if err = ensure(""); err != nil {
			break
		}
		o := ds.DefaultWriterOptions("bench-producer-" + strconv.FormatInt(time.Now().UnixNano(), 36))
		o.Linger = 0
		var w *ds.Writer
		if w, err = ds.NewWriter(s, o); err != nil {
			break
		}
		p := payload()
		for i := 0; i < op.Count && err == nil; i++ {
			err = w.Append(ctx, p)
		}
		if cerr := w.Close(ctx); err == nil {
			err = cerr
		}
		metrics["bytesTransferred"] = op.Count * op.Size
		metrics["messagesProcessed"] = op.Count
	case "throughput_read":
		count, nbytes := 0, 0
		for it, ierr := range s.RawItems(ctx, ds.ReadOptions{}) {
			if ierr != nil {
				err = ierr
				break
			}
			count++
			nbytes += len(it.Value)
		}
		metrics["bytesTransferred"] = nbytes
		metrics["messagesProcessed"] = count
	default:
		return errorResult{Type: "error", CommandType: c.Type, ErrorCode: "NOT_SUPPORTED", Message: "unknown benchmark operation " + op.Op}
	}
	if err != nil && err != io.EOF {
		return errResult(c.Type, err)
	}
	return result{Type: "benchmark", Success: true, IterationID: c.IterationID,
		DurationNs: strconv.FormatInt(time.Since(start).Nanoseconds(), 10), Metrics: metrics}
}

func orDefault(ct string) string {
	if ct == "" {
		return "application/octet-stream"
	}
	return ct
}
