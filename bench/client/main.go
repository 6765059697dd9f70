// Command client benchmarks the Durable Streams client against a bare net/http +
// encoding/json reader and against the official Go client
// (github.com/durable-streams/durable-streams/packages/client-go v0.1.0): catch-up read
// throughput of JSON streams, and Writer append throughput. Contenders run in one process,
// in an order that rotates from round to round; the table shows medians and ratios.
//
//	cd bench && go run ./client                       # 200k and 1M messages, 5 rounds
//	go run ./client -n 20000 -rounds 1 -writer 2000   # a smoke run
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	official "github.com/durable-streams/durable-streams/packages/client-go"

	"github.com/sluice-go/sluice/bench/internal/chart"
	"github.com/sluice-go/sluice/bench/internal/machine"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/refserver"
)

// order is the message the streams hold (~90 bytes of JSON each).
type order struct {
	ID     int     `json:"id"`
	User   string  `json:"user"`
	Type   string  `json:"type"`
	Amount float64 `json:"amount"`
	TS     string  `json:"ts"`
}

type contender struct {
	name  string
	group string // raw or typed: ratios compare within a group
	run   func(ctx context.Context, url string) (int, error)
}

var contenders = []contender{
	{"bare net/http+json.Decoder", "raw", bareRaw},
	{"sluice RawItems", "raw", sluiceRaw},
	{"official JSONItems[RawMessage]", "raw", officialRaw},
	{"bare net/http+json.Decoder", "typed", bareTyped},
	{"sluice JSONItems[T]", "typed", sluiceTyped},
	{"official JSONItems[T]", "typed", officialTyped},
}

// Every contender gets a transport with the same settings: Go's defaults, with compression
// off unless -gzip (on loopback, gzip costs both sides more than it saves).
func transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = !*gzipFlag
	return t
}

var (
	gzipFlag       = flag.Bool("gzip", false, "ask for gzip responses (the reference server compresses bodies >= 1 KiB)")
	bareClient     *http.Client
	sluiceClient   *dsclient.Client
	officialClient *official.Client
)

func setupClients() {
	bareClient = &http.Client{Transport: transport()}
	sluiceClient, _ = dsclient.NewClient(dsclient.WithHTTPClient(&http.Client{Transport: transport()}))
	officialClient = official.NewClient(official.WithHTTPClient(&http.Client{Transport: transport()}))
}

func bareGet(ctx context.Context, url string) (*json.Decoder, io.Closer, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"?offset=-1", nil)
	resp, err := bareClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	dec := json.NewDecoder(resp.Body)
	if _, err := dec.Token(); err != nil {
		resp.Body.Close()
		return nil, nil, err
	}
	return dec, resp.Body, nil
}

func bareRaw(ctx context.Context, url string) (int, error) {
	dec, body, err := bareGet(ctx, url)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n := 0
	var raw json.RawMessage
	for dec.More() {
		if err := dec.Decode(&raw); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func bareTyped(ctx context.Context, url string) (int, error) {
	dec, body, err := bareGet(ctx, url)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n := 0
	for dec.More() {
		var o order
		if err := dec.Decode(&o); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func sluiceRaw(ctx context.Context, url string) (int, error) {
	n := 0
	for _, err := range sluiceClient.Stream(url).RawItems(ctx, dsclient.ReadOptions{}) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func sluiceTyped(ctx context.Context, url string) (int, error) {
	n := 0
	for _, err := range dsclient.JSONItems[order](ctx, sluiceClient.Stream(url), dsclient.ReadOptions{}) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func officialRaw(ctx context.Context, url string) (int, error) {
	n := 0
	for _, err := range official.JSONItems[json.RawMessage](ctx, officialClient.Stream(url)) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func officialTyped(ctx context.Context, url string) (int, error) {
	n := 0
	for _, err := range official.JSONItems[order](ctx, officialClient.Stream(url)) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// fill creates a JSON stream of n orders, appended 10,000 per request.
func fill(ctx context.Context, url string, n int) error {
	s := sluiceClient.Stream(url, dsclient.WithContentType("application/json"))
	if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
		return err
	}
	batch := make([]order, 0, 10000)
	for i := range n {
		batch = append(batch, order{ID: i, User: "u" + strconv.Itoa(i%1000), Type: "purchase", Amount: 42.5, TS: "2024-01-01T00:00:00Z"})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := dsclient.AppendJSONBatch(ctx, s, batch, dsclient.AppendOptions{}); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func main() {
	sizes := flag.String("n", "200000,1000000", "stream sizes (JSON messages), comma-separated")
	rounds := flag.Int("rounds", 5, "rounds; the contenders' order rotates each round")
	only := flag.String("only", "", "run only contenders whose name contains this")
	writerN := flag.Int("writer", 200000, "messages for the Writer benchmark (0 to skip)")
	base := flag.String("server", "", "base URL of a running server (default: start the reference server)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the sluice contenders here")
	static := flag.Bool("static", true, "also read each stream from a Go loopback server replaying the reference server's response (measures the clients alone)")
	inproc := flag.Bool("dstest", true, "also fill and read each stream on the in-process server (dsclient/dstest)")
	pngOut := flag.String("png", "", "write PNG charts of the tables beside this path (results/client.png gives results/client-reads-static-1000000.png, ..., results/client-writer.png); default none")
	flag.Parse()
	log.SetFlags(0)
	setupClients()
	ctx := context.Background()

	if *base == "" {
		srv, err := refserver.Start(ctx, refserver.Options{})
		if err != nil {
			log.Fatal(err)
		}
		defer srv.Stop()
		*base = srv.URL
	}
	host = machine.Info()
	fmt.Printf("%s\nserver %s, gzip %v\n", host, *base, *gzipFlag)

	var prof *os.File
	if *cpuprofile != "" {
		var err error
		if prof, err = os.Create(*cpuprofile); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("\n%-9s %-8s %-6s %-32s %12s %14s %10s\n", "server", "msgs", "kind", "contender", "median", "msgs/s", "vs bare")
	for _, ns := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(ns))
		if err != nil {
			log.Fatalf("-n: %v", err)
		}
		url := fmt.Sprintf("%s/v1/stream/bench-client-%d-%d", *base, n, time.Now().UnixNano())
		if err := fill(ctx, url, n); err != nil {
			log.Fatalf("fill: %v", err)
		}
		sources := [][2]string{{"refserver", url}}
		if *inproc {
			srv, err := dstest.NewServer(dstest.Options{Compression: *gzipFlag})
			if err != nil {
				log.Fatal(err)
			}
			defer srv.Close()
			durl := srv.StreamURL(fmt.Sprintf("bench-client-%d", n))
			if err := fill(ctx, durl, n); err != nil {
				log.Fatalf("fill dstest: %v", err)
			}
			sources = append(sources, [2]string{"dstest", durl})
		}
		if *static {
			surl, stop, err := replay(ctx, url)
			if err != nil {
				log.Fatalf("replay: %v", err)
			}
			defer stop()
			sources = append(sources, [2]string{"static", surl})
		}
		for _, src := range sources {
			prof = runReads(ctx, src[0], src[1], n, *rounds, *only, prof)
		}
	}
	if *writerN > 0 {
		benchWriter(ctx, *base, *writerN, *rounds)
	}
	fmt.Println()
	for _, t := range targets {
		fmt.Println(t)
	}
	if *pngOut != "" {
		for i := range charts {
			charts[i].Path = chart.PartPath(*pngOut, charts[i].Path)
		}
		if err := chart.Write(charts...); err != nil {
			log.Fatalf("-png: %v", err)
		}
		for _, c := range charts {
			fmt.Println("chart:", c.Path)
		}
	}
}

// What the tables leave for the end of the run: the machine line, the targets and the
// charts (Path holds the part's name until -png gives the base path).
var (
	host    string
	targets []string
	charts  []chart.File
)

// benchWriter measures Writer append throughput against the limit of one pre-built
// 10,000-message batch per request, sent one after the other.
func benchWriter(ctx context.Context, base string, n, rounds int) {
	payloads := make([][]byte, n)
	orders := make([]order, n)
	for i := range n {
		orders[i] = order{ID: i, User: "u1", Type: "purchase", Amount: 42.5, TS: "2024-01-01T00:00:00Z"}
		payloads[i], _ = json.Marshal(orders[i])
	}
	runs := []struct {
		name string
		run  func(s *dsclient.Stream) error
	}{
		{"AppendJSONBatch 10k/request", func(s *dsclient.Stream) error {
			for i := 0; i < n; i += 10000 {
				if _, err := dsclient.AppendJSONBatch(ctx, s, orders[i:min(i+10000, n)], dsclient.AppendOptions{}); err != nil {
					return err
				}
			}
			return nil
		}},
		{"Writer.Append (defaults)", func(s *dsclient.Stream) error {
			w, err := dsclient.NewWriter(s, dsclient.DefaultWriterOptions(fmt.Sprint("bench-", time.Now().UnixNano())))
			if err != nil {
				return err
			}
			for _, p := range payloads {
				if err := w.Append(ctx, p); err != nil {
					return err
				}
			}
			return w.Close(ctx)
		}},
	}
	times := make([][]time.Duration, len(runs))
	for r := range rounds {
		for k := range runs {
			i := (k + r) % len(runs)
			s := sluiceClient.Stream(fmt.Sprintf("%s/v1/stream/bench-writer-%d", base, time.Now().UnixNano()), dsclient.WithContentType("application/json"))
			if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
				log.Fatal(err)
			}
			runtime.GC()
			start := time.Now()
			if err := runs[i].run(s); err != nil {
				log.Fatalf("%s: %v", runs[i].name, err)
			}
			times[i] = append(times[i], time.Since(start))
			m, err := s.Head(ctx)
			if err != nil || m.NextOffset == "" {
				log.Fatalf("%s: head: %v", runs[i].name, err)
			}
		}
	}
	fmt.Printf("\n%-8s %-38s %12s %14s %10s\n", "msgs", "writer", "median", "msgs/s", "vs batch")
	limit := median(times[0])
	c := chart.Chart{Title: fmt.Sprintf("Writer: %d appends of one message (median of %d rounds)\n%s", n, rounds, host), Unit: "msgs/s"}
	for i, r := range runs {
		m := median(times[i])
		fmt.Printf("%-8d %-38s %10.1fms %14.0f %9.2fx\n", n, r.name, float64(m)/1e6, float64(n)/m.Seconds(), float64(limit)/float64(m))
		c.Rows = append(c.Rows, chart.Row{Label: r.name, Value: float64(n) / m.Seconds(), Highlight: strings.HasPrefix(r.name, "Writer"),
			Text: fmt.Sprintf("%s  %.2fx batch", chart.FormatValue(float64(n)/m.Seconds()), float64(limit)/float64(m))})
	}
	charts = append(charts, chart.File{Path: "writer", Chart: c})
}

// runReads runs the read contenders against url and prints their rows.
func runReads(ctx context.Context, source, url string, n, rounds int, only string, prof *os.File) *os.File {
	var cs []contender
	for _, c := range contenders {
		if only == "" || strings.Contains(c.name, only) {
			cs = append(cs, c)
		}
	}
	times := make([][]time.Duration, len(cs))
	for r := range rounds {
		for k := range cs {
			i := (k + r) % len(cs)
			runtime.GC()
			profiling := prof != nil && strings.HasPrefix(cs[i].name, "sluice")
			if profiling {
				pprof.StartCPUProfile(prof)
			}
			start := time.Now()
			got, err := cs[i].run(ctx, url)
			d := time.Since(start)
			if profiling {
				pprof.StopCPUProfile()
				prof = nil
			}
			if err != nil || got != n {
				log.Fatalf("%s %s: read %d of %d: %v", cs[i].group, cs[i].name, got, n, err)
			}
			times[i] = append(times[i], d)
		}
	}
	bare := map[string]time.Duration{}
	for i, c := range cs {
		if strings.HasPrefix(c.name, "bare") {
			bare[c.group] = median(times[i])
		}
	}
	ch := chart.Chart{Title: fmt.Sprintf("catch-up reads, %s server, %d messages (median of %d rounds)\n%s", source, n, rounds, host), Unit: "msgs/s"}
	official := map[string]time.Duration{}
	for i, c := range cs {
		m := median(times[i])
		ratio := "-"
		if b, ok := bare[c.group]; ok {
			ratio = fmt.Sprintf("%.2fx", float64(b)/float64(m))
		}
		if strings.HasPrefix(c.name, "official") {
			official[c.group] = m
		}
		fmt.Printf("%-9s %-8d %-6s %-32s %10.1fms %14.0f %10s\n", source, n, c.group, c.name, float64(m)/1e6, float64(n)/m.Seconds(), ratio)
		ch.Rows = append(ch.Rows, chart.Row{Label: c.group + ": " + c.name, Value: float64(n) / m.Seconds(), Highlight: strings.HasPrefix(c.name, "sluice"),
			Text: fmt.Sprintf("%s  %s bare", chart.FormatValue(float64(n)/m.Seconds()), ratio)})
	}
	for i, c := range cs {
		if o, ok := official[c.group]; ok && c.group == "typed" && strings.HasPrefix(c.name, "sluice") {
			x := float64(o) / float64(median(times[i]))
			targets = append(targets, fmt.Sprintf("target (%s, %d): sluice typed reads >= 1.5x the official Go client: %.2fx %s", source, n, x, map[bool]string{true: "PASS", false: "MISS"}[x >= 1.5]))
		}
	}
	charts = append(charts, chart.File{Path: fmt.Sprintf("reads-%s-%d", source, n), Chart: ch})
	return prof
}

// replay fetches the whole stream once and serves that response again from a Go loopback
// server, for every offset, with the same protocol headers.
func replay(ctx context.Context, url string) (string, func(), error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"?offset=-1", nil)
	resp, err := bareClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", nil, err
	}
	hdr := http.Header{}
	for _, k := range []string{"Content-Type", "Stream-Next-Offset", "Stream-Up-To-Date", "Etag"} {
		hdr.Set(k, resp.Header.Get(k))
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.Write(body)
	}))
	return srv.URL + "/v1/stream/replay", srv.Close, nil
}
