package metrics_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/source/durablestreams"
)

// A pipeline reading a Durable Stream, with one Metrics observing the client, the producer
// and the pipeline, and the producer's lag gauges read from its Stats at scrape time.
func ExampleMetrics_WatchProducer() {
	ctx := context.Background()
	srv, err := dstest.NewServer(dstest.Options{}) // an in-process Durable Streams server
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "orders"})
	if err != nil {
		fmt.Println(err)
		return
	}
	stream := dsclient.NewStream(srv.StreamURL("orders"), dsclient.WithObserver(m))
	if _, err := stream.Create(ctx, dsclient.CreateOptions{ContentType: "application/json", Body: []byte(`[1,2,3]`)}); err != nil {
		fmt.Println(err)
		return
	}
	prod, err := durablestreams.NewProducer(durablestreams.ProducerOptions[int]{Stream: stream, Observer: m})
	if err != nil {
		fmt.Println(err)
		return
	}
	m.WatchProducer(prod)
	p, err := pipeline.New(pipeline.Options[int]{
		Name:     "orders",
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{
			Handler: pipeline.HandlerFunc[int](func(context.Context, *pipeline.Message[int]) error { return nil }),
		}},
		Observer: m,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Run(ctx); err != nil { // LiveOff: the run ends at the stream's tail
		fmt.Println(err)
		return
	}

	fams, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	var text strings.Builder
	for _, f := range fams {
		switch f.GetName() {
		case "sluice_ds_producer_messages_total", "sluice_ds_producer_at_tail",
			"sluice_ds_producer_pending_messages", "sluice_messages_acked_total":
			expfmt.MetricFamilyToText(&text, f)
		}
	}
	for line := range strings.Lines(text.String()) {
		if !strings.HasPrefix(line, "#") {
			fmt.Print(line)
		}
	}
	// Output:
	// sluice_ds_producer_at_tail{pipeline="orders"} 1
	// sluice_ds_producer_messages_total{pipeline="orders"} 3
	// sluice_ds_producer_pending_messages{pipeline="orders"} 0
	// sluice_messages_acked_total{pipeline="orders"} 3
}
