package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-go/sluice/dsclient/dstest"
)

func main() {
	var (
		addr   = flag.String("addr", "127.0.0.1:4437", "address to listen on (host:port)")
		quiet  = flag.Bool("quiet", false, "do not log requests")
		opts   dstest.Options
		logFmt = flag.String("log-format", "text", "request log format: text or json")
	)
	flag.StringVar(&opts.Prefix, "prefix", "/v1/stream/", "URL path under which streams live")
	flag.DurationVar(&opts.LongPollTimeout, "long-poll-timeout", 30e9, "how long a long-poll waits; also the SSE keep-alive interval")
	flag.DurationVar(&opts.SSELifetime, "sse-lifetime", 0, "end SSE responses after this long (0: never)")
	flag.IntVar(&opts.MaxChunkBytes, "max-chunk-bytes", 0, "most stored bytes one read returns (0: no limit)")
	flag.Int64Var(&opts.MaxBodyBytes, "max-body-bytes", 0, "largest request body accepted (0: 1 GiB)")
	flag.BoolVar(&opts.Compression, "compression", true, "gzip read responses of 1 KiB or more when the client accepts it")
	flag.DurationVar(&opts.CursorInterval, "cursor-interval", 20e9, "length of a cursor interval")
	flag.BoolVar(&opts.DisableWebhooks, "disable-webhooks", false, "refuse webhook subscriptions (pull-wake ones are always served)")
	flag.DurationVar(&opts.DefaultLeaseTTL, "default-lease-ttl", 0, "lease of a subscription that asks for none (0: 30s)")
	flag.DurationVar(&opts.MinLeaseTTL, "min-lease-ttl", 0, "shortest lease a subscription may ask for (0: 1s)")
	flag.DurationVar(&opts.MaxLeaseTTL, "max-lease-ttl", 0, "longest lease a subscription may ask for (0: 10m)")
	flag.DurationVar(&opts.TokenTTL, "token-ttl", 0, "lifetime of claim and callback tokens (0: 1h)")
	flag.DurationVar(&opts.WebhookTimeout, "webhook-timeout", 0, "time limit of one webhook delivery attempt (0: 30s)")
	flag.DurationVar(&opts.WebhookRetryMin, "webhook-retry-min", 0, "delay before the first retry of a failed delivery (0: 1s)")
	flag.DurationVar(&opts.WebhookRetryMax, "webhook-retry-max", 0, "longest delay between delivery retries (0: 60s)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "dstest-server: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if !*quiet {
		switch *logFmt {
		case "text":
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		case "json":
			opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
		default:
			fmt.Fprintf(os.Stderr, "dstest-server: -log-format: want text or json, got %q\n", *logFmt)
			os.Exit(2)
		}
	}
	srv, err := dstest.Listen(*addr, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dstest-server:", err)
		os.Exit(1)
	}
	fmt.Println(srv.URL)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "dstest-server:", err)
		os.Exit(1)
	}
}
