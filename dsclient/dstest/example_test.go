package dstest_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sluice-go/sluice/dsclient/dstest"
)

func Example() {
	srv, err := dstest.NewServer(dstest.Options{LongPollTimeout: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	url := srv.StreamURL("orders")

	req, _ := http.NewRequest("PUT", url, nil)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("create:", resp.StatusCode)

	resp, err = http.Post(url, "application/json", strings.NewReader(`[{"id":1},{"id":2}]`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("append:", resp.StatusCode, resp.Header.Get("Stream-Next-Offset"))

	resp, err = http.Get(url + "?offset=-1")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("read:", string(body), resp.Header.Get("Stream-Up-To-Date"))
	// Output:
	// create: 201
	// append: 204 0000000000000000_0000000000000018
	// read: [{"id":1},{"id":2}] true
}

func ExampleServer_InjectFault() {
	srv, err := dstest.NewServer(dstest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	url := srv.StreamURL("events")
	resp, _ := http.Post(url, "text/plain", nil) // no such stream yet
	resp.Body.Close()
	fmt.Println("append before create:", resp.StatusCode)

	// The next two reads of the stream fail with 503 and a Retry-After of one second.
	if err := srv.InjectFault("events", dstest.Fault{Method: "GET", Status: 503, RetryAfter: time.Second, Count: 2}); err != nil {
		log.Fatal(err)
	}
	for range 3 {
		resp, err := http.Get(url)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println("read:", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Output:
	// append before create: 404
	// read: 503 1
	// read: 503 1
	// read: 404
}

func ExampleNewHandler() {
	h, err := dstest.NewHandler(dstest.Options{Prefix: "/streams/"})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	mux := http.NewServeMux()
	mux.Handle("/streams/", h)
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, _ := http.NewRequest("PUT", srv.URL+"/streams/log", strings.NewReader("hello"))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Location") == srv.URL+"/streams/log")
	// Output: 201 true
}
