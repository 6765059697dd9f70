package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/producer"
)

// A pipeline observed by Prometheus collectors on a registry of its own, served by promhttp
// on a loopback port, then scraped.
func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "orders"})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The same Metrics observes the Durable Streams client, when the pipeline reads one:
	_, _ = dsclient.NewClient(dsclient.WithObserver(m))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	go srv.Serve(ln)
	defer srv.Close()

	p, err := pipeline.New(pipeline.Options[string]{
		Name:     "orders",
		Producer: producer.Slice([]string{"a", "b", "c", "d", "e"}, nil),
		Processors: []pipeline.ProcessorOptions[string]{{
			Name: "price",
			Handler: pipeline.HandlerFunc[string](func(_ context.Context, msg *pipeline.Message[string]) error {
				if msg.Data == "c" {
					return pipeline.Permanent(fmt.Errorf("no price for %s", msg.Data)) // bad data
				}
				return nil
			}),
		}},
		Observer: m, // pipeline events become metrics
		Logger:   discardLogger,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
		return
	}

	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "sluice_messages_") && !strings.Contains(line, "in_flight") {
			fmt.Println(line)
		}
	}
	// Output:
	// sluice_messages_acked_failed_total{pipeline="orders"} 1
	// sluice_messages_acked_total{pipeline="orders"} 5
	// sluice_messages_failed_total{pipeline="orders",stage="price"} 1
	// sluice_messages_halted_total{pipeline="orders"} 0
	// sluice_messages_processed_total{pipeline="orders",stage="price"} 5
	// sluice_messages_produced_total{pipeline="orders"} 5
}
