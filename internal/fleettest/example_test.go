package fleettest_test

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"

	"github.com/sluice-go/sluice/internal/fleettest"
)

// Two hosts on one machine, a program run on one of them, and a service of the root
// namespace's loopback (PostgreSQL, say) made reachable from them through a forwarder on the
// bridge. It needs root, so it only compiles here.
func ExampleNewNet() {
	if err := fleettest.Check(); err != nil {
		log.Printf("cannot make hosts here: %v", err)
		return
	}
	n, err := fleettest.NewNet("srv", "w1")
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close() // kills what runs on the hosts, removes them
	pg, err := fleettest.Forward(net.JoinHostPort(n.Gateway, "0"), "127.0.0.1:5432")
	if err != nil {
		log.Fatal(err)
	}
	defer pg.Close()
	out, err := n.Host("w1").Command("psql", "-h", n.Gateway, "-p", fmt.Sprint(pg.Addr()[len(n.Gateway)+1:]), "-c", "SELECT 1").CombinedOutput()
	fmt.Printf("%s %v\n", out, err)
}

// A forwarder relays each connection it accepts to its target.
func ExampleForward() {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	f, err := fleettest.Forward("127.0.0.1:0", echo.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "hello through the forwarder")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	// Output: hello through the forwarder
}
