package dsclient

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestSSEParser(t *testing.T) {
	in := ": comment\r\nevent: data\r\ndata: [1,\r\ndata: 2]\r\n\r\n" +
		"event: future\ndata: {}\n\n" +
		"event: control\ndata:{\"streamNextOffset\":\"1_2\"}\nid: 7\nretry: 10\n\n" +
		"event: control\ndata: \n\n" +
		"data: plain\n\n" +
		"event: data\n\n" // no data line: not dispatched
	names := map[sseEvent]string{sseMessage: "message", sseData: "data", sseControl: "control", sseOther: "other"}
	for _, size := range []int{sseBufSize, 16} { // 16: every line is longer than the read buffer
		p := newSSEParser(strings.NewReader(in))
		if size < sseBufSize {
			p.br = bufio.NewReaderSize(strings.NewReader(in), size)
		}
		want := []string{"data:[1,\n2]", "other:{}", `control:{"streamNextOffset":"1_2"}`, "control:", "message:plain"}
		for _, w := range want {
			typ, data, err := p.next(nil, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if got := names[typ] + ":" + string(data); got != w {
				t.Fatalf("buffer %d: got %q want %q", size, got, w)
			}
		}
		if _, _, err := p.next(nil, 1<<20); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
	}
	p := newSSEParser(strings.NewReader("event: data\ndata: x"))
	if _, _, err := p.next(nil, 1<<20); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut event: %v", err)
	}
	// Data beyond the limit stops the parser, whatever the line length.
	p = newSSEParser(strings.NewReader("event: data\ndata: " + strings.Repeat("x", 100<<10) + "\n\n"))
	if _, _, err := p.next(nil, 10<<10); err != errSSETooLarge {
		t.Fatalf("long line: %v", err)
	}
}

func sseChunks(t *testing.T, in, ctype string, b64 bool) ([]string, error) {
	t.Helper()
	c := newSSEConn(io.NopCloser(strings.NewReader(in)), ctype, b64, 1<<20)
	var out []string
	for {
		data, ctl, err := c.next()
		if err != nil {
			return out, err
		}
		out = append(out, string(data)+"@"+*ctl.NextOffset)
	}
}

func TestSSEConnChunks(t *testing.T) {
	in := "event: data\ndata: [{\"a\":1}]\n\nevent: data\ndata: [\ndata: {\"a\":2},\ndata: {\"a\":3}\ndata: ]\n\n" +
		"event: control\ndata: {\"streamNextOffset\":\"1\",\"streamCursor\":\"c\"}\n\n" +
		"event: control\ndata: {\"streamNextOffset\":\"1\",\"upToDate\":true}\n\n"
	got, err := sseChunks(t, in, "application/json", false)
	if err != io.EOF {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "[{\"a\":1},{\"a\":2},\n{\"a\":3}]@1|[]@1" {
		t.Fatalf("chunks %q", got)
	}
	got, err = sseChunks(t, "event: data\ndata: AAEC\ndata: /w==\n\nevent: control\ndata: {\"streamNextOffset\":\"2\"}\n\n", "application/octet-stream", true)
	if err != io.EOF || len(got) != 1 || got[0] != "\x00\x01\x02\xff@2" {
		t.Fatalf("base64: %q %v", got, err)
	}
	// Base64 across lines and longer than a decoding block.
	payload := make([]byte, 10000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	enc := base64.StdEncoding.EncodeToString(payload)
	in = "event: data\ndata: " + enc[:5000] + "\r\ndata: " + enc[5000:] + "\n\nevent: control\ndata: {\"streamNextOffset\":\"3\"}\n\n"
	got, err = sseChunks(t, in, "application/octet-stream", true)
	if err != io.EOF || len(got) != 1 || got[0] != string(payload)+"@3" {
		t.Fatalf("long base64: %d chunks, %v", len(got), err)
	}
	_, err = sseChunks(t, "event: data\ndata: !!\n\n", "application/octet-stream", true)
	var pe *sseParseError
	if !errors.As(err, &pe) {
		t.Fatalf("bad base64: %v", err)
	}
	for _, bad := range []string{"event: control\ndata: {invalid\n\n", "event: control\ndata: \n\n", "event: control\ndata: {}\n\n"} {
		if _, err := sseChunks(t, bad, "text/plain", false); !errors.As(err, &pe) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func FuzzSSEParser(f *testing.F) {
	f.Add("event: data\r\ndata: [1]\r\n\r\nevent: control\ndata: {\"streamNextOffset\":\"1\"}\n\n")
	f.Add(": c\n\ndata\n\nevent:\ndata:\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		for _, ct := range []string{"application/json", "text/plain"} {
			c := newSSEConn(io.NopCloser(strings.NewReader(in)), ct, false, 1<<16)
			for range 1000 {
				data, ctl, err := c.next()
				if err != nil {
					break
				}
				if ctl.NextOffset == nil || *ctl.NextOffset == "" {
					t.Fatalf("chunk without offset")
				}
				if len(data) > 1<<16+2 {
					t.Fatalf("chunk of %d bytes, over the limit", len(data))
				}
				if ct == "application/json" {
					sc := newBytesScanner(data)
					for range 10000 {
						if _, err := sc.next(); err != nil {
							break
						}
					}
				}
			}
		}
	})
}
