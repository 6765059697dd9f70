package fleettest_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/internal/fleettest"
)

// nsList returns the names of the machine's network namespaces.
func nsList(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// TestNet makes two hosts, checks that a process on one is reached from the root namespace
// and from the other host, and that a forwarder on the bridge relays to the root
// namespace's loopback; then that Close removes the namespaces and the bridge.
func TestNet(t *testing.T) {
	requireNetns(t)
	n, err := fleettest.NewNet("a", "b")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	a, b := n.Host("a"), n.Host("b")
	if a == nil || b == nil || a.Addr == b.Addr || !strings.HasSuffix(n.Gateway, ".1") {
		t.Fatalf("hosts %+v, %+v, gateway %s", a, b, n.Gateway)
	}

	// A listener on host a (nc is not everywhere: the shell's /dev/tcp is not either, so
	// the listener is this test binary's own helper below).
	srv := a.Command(os.Args[0], "-test.run=^TestHelperEcho$")
	srv.Env = append(os.Environ(), "SLUICE_FLEET_ECHO="+net.JoinHostPort(a.Addr, "7777"))
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "listening" {
		t.Fatalf("echo on host a: %q, %v", line, err)
	}
	// From the root namespace.
	if got := echo(t, net.JoinHostPort(a.Addr, "7777"), "root"); got != "root" {
		t.Errorf("root → a: %q", got)
	}
	// From host b, through the same helper in client mode.
	cli := b.Command(os.Args[0], "-test.run=^TestHelperEcho$")
	cli.Env = append(os.Environ(), "SLUICE_FLEET_ECHO_DIAL="+net.JoinHostPort(a.Addr, "7777"))
	if got, err := cli.Output(); err != nil || strings.TrimSpace(string(got)) != "from-b" {
		t.Errorf("b → a: %q, %v", got, err)
	}
	// A host reaches the root namespace's loopback only through a forwarder on the bridge.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	defer ln.Close()
	fwd, err := fleettest.Forward(net.JoinHostPort(n.Gateway, "0"), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	cli = b.Command(os.Args[0], "-test.run=^TestHelperEcho$")
	cli.Env = append(os.Environ(), "SLUICE_FLEET_ECHO_DIAL="+fwd.Addr())
	if got, err := cli.Output(); err != nil || strings.TrimSpace(string(got)) != "from-b" {
		t.Errorf("b → forwarder → root's loopback: %q, %v", got, err)
	}

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, h := range n.Hosts {
		if slices.Contains(nsList(t), h.NS) {
			t.Errorf("namespace %s is still there after Close", h.NS)
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.Bridge)); err == nil {
		t.Errorf("bridge %s is still there after Close", n.Bridge)
	}
}

// echo dials addr, writes msg and a newline, and returns the line it reads back.
func echo(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(c, msg)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestHelperEcho is not a test: TestNet runs it on a host, as an echo server
// (SLUICE_FLEET_ECHO=addr) or as a client that sends "from-b" (SLUICE_FLEET_ECHO_DIAL=addr).
func TestHelperEcho(t *testing.T) {
	if addr := os.Getenv("SLUICE_FLEET_ECHO"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("listening")
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}
	if addr := os.Getenv("SLUICE_FLEET_ECHO_DIAL"); addr != "" {
		fmt.Println(echo(t, addr, "from-b"))
		os.Exit(0)
	}
	t.Skip("a helper process of TestNet")
}

// TestRemoveStale leaves a namespace and a link named after a process that is gone, as a
// killed run would, and checks that RemoveStale removes them and leaves those of a live
// process alone.
func TestRemoveStale(t *testing.T) {
	requireNetns(t)
	// A pid that is not running: pid_max is at most 4194304.
	dead := 4194303
	for ; dead > 0; dead-- {
		if _, err := os.Stat("/proc/" + strconv.Itoa(dead)); err != nil {
			break
		}
	}
	ns := fmt.Sprintf("%s%d-0-x", fleettest.NamePrefix, dead)
	link := fmt.Sprintf("sfb0-%d", dead)
	mine := fmt.Sprintf("%s%d-9-x", fleettest.NamePrefix, os.Getpid())
	for _, args := range [][]string{{"netns", "add", ns}, {"netns", "add", mine}, {"link", "add", link, "type", "bridge"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	defer exec.Command("ip", "netns", "del", mine).Run()
	defer exec.Command("ip", "netns", "del", ns).Run()
	defer exec.Command("ip", "link", "del", link).Run()
	removed, err := fleettest.RemoveStale()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, ns) || !slices.Contains(removed, link) {
		t.Errorf("removed %v, want %s and %s among them", removed, ns, link)
	}
	if slices.Contains(removed, mine) || !slices.Contains(nsList(t), mine) {
		t.Errorf("removed %v: %s belongs to this live process", removed, mine)
	}
	if slices.Contains(nsList(t), ns) {
		t.Errorf("%s is still there", ns)
	}
}
