package dstest

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sseClient reads the events of one SSE response.
type sseClient struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

type sseEvent struct {
	typ  string
	data string // data lines joined with "\n"
}

// control is a decoded control event.
type control struct {
	StreamNextOffset string `json:"streamNextOffset"`
	StreamCursor     string `json:"streamCursor"`
	UpToDate         bool   `json:"upToDate"`
	StreamClosed     bool   `json:"streamClosed"`
}

func openSSE(t *testing.T, url string) *sseClient {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("SSE %s: status %d %s", url, resp.StatusCode, b)
	}
	return &sseClient{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event, or false at the end of the response.
func (c *sseClient) next() (sseEvent, bool) {
	c.t.Helper()
	var ev sseEvent
	var data []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			if err != io.EOF {
				c.t.Logf("SSE read: %v", err)
			}
			return ev, false
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.typ == "" && data == nil {
				continue
			}
			ev.data = strings.Join(data, "\n")
			return ev, true
		case strings.HasPrefix(line, "event:"):
			ev.typ = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			data = append(data, line[len("data:"):])
		}
	}
}

func (c *sseClient) expectData() string {
	c.t.Helper()
	ev, ok := c.next()
	if !ok || ev.typ != "data" {
		c.t.Fatalf("want a data event, got %+v (%v)", ev, ok)
	}
	return ev.data
}

func (c *sseClient) expectControl() control {
	c.t.Helper()
	ev, ok := c.next()
	if !ok || ev.typ != "control" {
		c.t.Fatalf("want a control event, got %+v (%v)", ev, ok)
	}
	var ctl control
	if err := json.Unmarshal([]byte(ev.data), &ctl); err != nil {
		c.t.Fatalf("control %q: %v", ev.data, err)
	}
	return ctl
}

func (c *sseClient) expectEnd() {
	c.t.Helper()
	if ev, ok := c.next(); ok {
		c.t.Fatalf("want the end of the response, got %+v", ev)
	}
}

func TestSSECatchUpAndLive(t *testing.T) {
	srv := newTestServer(t, Options{LongPollTimeout: time.Minute})
	waits := waitSignals(srv)
	u := srv.StreamURL("sse-json")
	expect(t, 201, "PUT", u, `[{"n":1}]`, "Content-Type", "application/json")
	expect(t, 204, "POST", u, `[{"n":2},{"n":3}]`, "Content-Type", "application/json")

	c := openSSE(t, u+"?offset=-1&live=sse")
	header(t, c.resp, "Content-Type", "text/event-stream")
	header(t, c.resp, "Cache-Control", "no-cache")
	noHeader(t, c.resp, "Stream-Sse-Data-Encoding")
	if d := c.expectData(); d != `[{"n":1},{"n":2},{"n":3}]` {
		t.Fatalf("data %q", d)
	}
	ctl := c.expectControl()
	if !ctl.UpToDate || ctl.StreamCursor == "" || ctl.StreamClosed {
		t.Fatalf("control %+v", ctl)
	}
	<-waits
	resp, _ := expect(t, 204, "POST", u, `{"n":4}`, "Content-Type", "application/json")
	if d := c.expectData(); d != `[{"n":4}]` {
		t.Fatalf("live data %q", d)
	}
	if ctl = c.expectControl(); ctl.StreamNextOffset != resp.Header.Get("Stream-Next-Offset") || !ctl.UpToDate {
		t.Fatalf("live control %+v", ctl)
	}
	<-waits
	expect(t, 204, "POST", u, `{"n":5}`, "Content-Type", "application/json", "Stream-Closed", "true")
	if d := c.expectData(); d != `[{"n":5}]` {
		t.Fatalf("final data %q", d)
	}
	if ctl = c.expectControl(); !ctl.StreamClosed || ctl.StreamCursor != "" {
		t.Fatalf("final control %+v", ctl)
	}
	c.expectEnd()
}

func TestSSEChunkedCatchUp(t *testing.T) {
	srv := newTestServer(t, Options{MaxChunkBytes: 10})
	u := srv.StreamURL("sse-chunks")
	expect(t, 201, "PUT", u, "", "Content-Type", "application/octet-stream")
	for _, p := range []string{"aaaa", "bbbb", "cccc", "dddd"} {
		expect(t, 204, "POST", u, p, "Content-Type", "application/octet-stream")
	}
	expect(t, 204, "POST", u, "", "Stream-Closed", "true")
	c := openSSE(t, u+"?offset=-1&live=sse")
	header(t, c.resp, "Stream-Sse-Data-Encoding", "base64")
	var all []byte
	for i := 0; ; i++ {
		d, err := base64.StdEncoding.DecodeString(c.expectData())
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, d...)
		ctl := c.expectControl()
		if ctl.StreamClosed {
			break
		}
		if ctl.UpToDate || i > 3 {
			t.Fatalf("control %d: %+v", i, ctl)
		}
	}
	if string(all) != "aaaabbbbccccdddd" {
		t.Fatalf("data %q", all)
	}
	c.expectEnd()
}

func TestSSETextLines(t *testing.T) {
	srv := newTestServer(t, Options{})
	u := srv.StreamURL("sse-text")
	// Line breaks of every kind become data lines: no payload can forge an event.
	expect(t, 201, "PUT", u, "a\nb\r\nc\rd\n\nevent: control\ndata: x", "Content-Type", "text/plain", "Stream-Closed", "true")
	c := openSSE(t, u+"?offset=-1&live=sse")
	if d := c.expectData(); d != "a\nb\nc\nd\n\nevent: control\ndata: x" {
		t.Fatalf("data %q", d)
	}
	if ctl := c.expectControl(); !ctl.StreamClosed || !ctl.UpToDate {
		t.Fatalf("control %+v", ctl)
	}
	c.expectEnd()
}

func TestSSEAtTail(t *testing.T) {
	srv := newTestServer(t, Options{LongPollTimeout: 30 * time.Millisecond})
	u := srv.StreamURL("sse-tail")
	expect(t, 201, "PUT", u, "abc", "Content-Type", "text/plain")
	c := openSSE(t, u+"?offset=now&live=sse")
	// The first control event says where the tail is; keep-alives follow.
	ctl := c.expectControl()
	if !ctl.UpToDate || ctl.StreamNextOffset == zeroOffset {
		t.Fatalf("first control %+v", ctl)
	}
	if k := c.expectControl(); k.StreamNextOffset != ctl.StreamNextOffset || !k.UpToDate || k.StreamCursor == "" {
		t.Fatalf("keep-alive %+v", k)
	}
	expect(t, 204, "POST", u, "", "Stream-Closed", "true")
	for {
		k := c.expectControl()
		if k.StreamClosed {
			break
		}
	}
	c.expectEnd()

	// Closed, at the tail: one closing control event and the end.
	c = openSSE(t, u+"?offset=now&live=sse")
	if ctl := c.expectControl(); !ctl.StreamClosed || !ctl.UpToDate {
		t.Fatalf("control %+v", ctl)
	}
	c.expectEnd()
}

func TestSSELifetime(t *testing.T) {
	srv := newTestServer(t, Options{SSELifetime: 50 * time.Millisecond, LongPollTimeout: time.Minute})
	u := srv.StreamURL("sse-life")
	expect(t, 201, "PUT", u, "abc", "Content-Type", "text/plain")
	c := openSSE(t, u+"?offset=-1&live=sse")
	c.expectData()
	c.expectControl()
	c.expectEnd() // ended by the server after its lifetime
}

func TestSSEEndsWhenStreamDeleted(t *testing.T) {
	srv := newTestServer(t, Options{LongPollTimeout: time.Minute})
	waits := waitSignals(srv)
	u := srv.StreamURL("sse-delete")
	expect(t, 201, "PUT", u, "", "Content-Type", "text/plain")
	c := openSSE(t, u+"?offset=-1&live=sse")
	c.expectControl()
	<-waits
	expect(t, 204, "DELETE", u, "")
	c.expectEnd()
}
