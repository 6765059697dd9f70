package producer_test

import (
	"context"
	"fmt"
	"maps"
	"sync/atomic"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/producer"
)

// summer is a pipeline that adds up the values its producer yields; Run returns when the
// input has ended and every message is done.
func summer(p pipeline.Producer[int]) (int64, error) {
	var sum atomic.Int64
	pl, err := pipeline.New(pipeline.Options[int]{
		Producer: p,
		Processors: []pipeline.ProcessorOptions[int]{{
			Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				sum.Add(int64(m.Data))
				return nil
			}),
		}},
	})
	if err != nil {
		return 0, err
	}
	err = pl.Run(context.Background())
	return sum.Load(), err
}

func ExampleSlice() {
	sum, err := summer(producer.Slice([]int{1, 2, 3, 4}, nil))
	fmt.Println(sum, err)
	// Output: 10 <nil>
}

func ExampleSeq() {
	prices := map[string]int{"apple": 3, "pear": 4}
	sum, err := summer(producer.Seq(maps.Values(prices), nil))
	fmt.Println(sum, err)
	// Output: 7 <nil>
}

func ExampleFromChan() {
	ch := make(chan int)
	go func() {
		defer close(ch) // closing the channel ends the input: the pipeline drains and returns
		for i := 1; i <= 100; i++ {
			ch <- i
		}
	}()
	sum, err := summer(producer.FromChan(ch, nil))
	fmt.Println(sum, err)
	// Output: 5050 <nil>
}

func ExampleGenerate() {
	squares := producer.Generate(func(i int) (int, bool) { return i * i, i < 4 }, nil)
	sum, err := summer(squares)
	fmt.Println(sum, err)
	// Output: 14 <nil>
}
