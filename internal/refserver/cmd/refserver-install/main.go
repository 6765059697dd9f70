package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/sluice-go/sluice/internal/refserver"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if !refserver.Available() {
		log.Fatal("node and npm are required")
	}
	if err := refserver.Install(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("@durable-streams/server %s installed in %s\n", refserver.Version, refserver.Dir())
}
