package dstest_test

import (
	"encoding/json"
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

// A pull-wake subscription (PROTOCOL.md 7.2): an append to a linked stream writes a wake
// event to the wake stream; a worker claims the subscription, reads each pending stream after
// its acked offset, and acks done with the offsets it processed.
func Example_pullWake() {
	srv, err := dstest.NewServer(dstest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	send("PUT", srv.StreamURL("wake/pool"), "", "") // the application creates the wake stream
	send("PUT", srv.StreamURL("events/a"), "", "")
	status, _ := send("PUT", srv.SubscriptionURL("workers"), "",
		`{"type":"pull-wake","pattern":"events/*","wake_stream":"wake/pool","lease_ttl_ms":10000}`)
	fmt.Println("subscription:", status)

	send("POST", srv.StreamURL("events/a"), "", `{"n":1}`)
	send("POST", srv.StreamURL("events/a"), "", `{"n":2}`)
	_, body := send("GET", srv.StreamURL("wake/pool")+"?offset=-1", "", "")
	var wakes []struct {
		Type, Stream string
		Generation   int
	}
	json.Unmarshal(body, &wakes)
	fmt.Printf("wake events: %+v\n", wakes)

	_, body = send("POST", srv.SubscriptionURL("workers")+"/claim", "", `{"worker":"worker-1"}`)
	var claim struct {
		WakeID     string `json:"wake_id"`
		Generation int    `json:"generation"`
		Token      string `json:"token"`
		Streams    []struct {
			Path        string `json:"path"`
			AckedOffset string `json:"acked_offset"`
			TailOffset  string `json:"tail_offset"`
			HasPending  bool   `json:"has_pending"`
		} `json:"streams"`
	}
	json.Unmarshal(body, &claim)
	fmt.Println("claimed generation", claim.Generation)
	var acks []string
	for _, s := range claim.Streams {
		if !s.HasPending {
			continue
		}
		_, data := send("GET", srv.StreamURL(s.Path)+"?offset="+s.AckedOffset, "", "")
		fmt.Printf("%s: %s\n", s.Path, data)
		acks = append(acks, fmt.Sprintf(`{"stream":%q,"offset":%q}`, s.Path, s.TailOffset))
	}
	status, body = send("POST", srv.SubscriptionURL("workers")+"/ack", claim.Token,
		fmt.Sprintf(`{"wake_id":%q,"generation":%d,"acks":[%s],"done":true}`, claim.WakeID, claim.Generation, strings.Join(acks, ",")))
	fmt.Println("ack:", status, string(body))
	status, body = send("POST", srv.SubscriptionURL("workers")+"/claim", "", `{"worker":"worker-2"}`)
	fmt.Println("claim:", status, string(body))
	// Output:
	// subscription: 201
	// wake events: [{Type:wake Stream:events/a Generation:1}]
	// claimed generation 1
	// events/a: [{"n":1},{"n":2}]
	// ack: 200 {"ok":true,"next_wake":false}
	// claim: 409 {"error":{"code":"NO_PENDING_WORK","message":"the subscription has no pending work"}}
}

// send makes one request with a JSON body (if any) and a bearer token (if any), and returns
// the status and the body.
func send(method, url, token, body string) (int, []byte) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
