package fleettest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// RequireEnv is the environment variable that turns a machine where network namespaces
// cannot be made into a test failure instead of a skip.
const RequireEnv = "SLUICE_REQUIRE_NETNS"

// NamePrefix starts the name of every network namespace a [Net] makes:
// "slfleet-<pid>-<n>-<host>", where pid is the process that made it, so that a later run
// finds and removes what a killed run left ([RemoveStale]).
const NamePrefix = "slfleet-"

// Links are named "sfb<n>-<pid>" (the bridge), "sfv<n><i>-<pid>" (a host's end on the
// bridge) and "sfp<n><i>-<pid>" (its peer, renamed eth0 inside the host): at most 15 bytes.
var (
	nsName   = regexp.MustCompile(`^` + NamePrefix + `([0-9]+)-[0-9]+-[a-z0-9]+$`)
	linkName = regexp.MustCompile(`^sf[bvp][0-9]+-([0-9]+)$`)
)

// Check reports why this machine cannot make the hosts of a [Net] — not root, no ip
// command, namespaces refused — or nil when it can. It makes and removes one namespace.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (this process runs as uid " + strconv.Itoa(os.Geteuid()) + ")")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the ip command (iproute2) is not installed")
	}
	probe := fmt.Sprintf("%s%d-99-probe", NamePrefix, os.Getpid())
	if err := ip("netns", "add", probe); err != nil {
		return fmt.Errorf("cannot make a network namespace: %w", err)
	}
	if err := ip("netns", "del", probe); err != nil {
		return fmt.Errorf("cannot remove the probe namespace %s: %w", probe, err)
	}
	return nil
}

// ip runs the ip command with args and returns its error with its output.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// ipOut runs the ip command with args and returns its standard output.
func ipOut(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).Output()
	if err != nil {
		return "", fmt.Errorf("ip %s: %v", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// Net is a set of hosts made with network namespaces on one machine: each host a namespace
// with one interface (eth0) on a bridge of the root namespace, all in one /24 of 10.77.0.0/16
// that no other interface of the machine uses. The root namespace has the subnet's .1 on
// the bridge ([Net.Gateway]), so that a process of the root namespace (the test) reaches
// every host and can listen where every host reaches it. Traffic never leaves the machine.
//
// A Net is made by [NewNet] and removed by [Net.Close]; its methods are safe for concurrent
// use.
type Net struct {
	// ID is the run's part of every name: "<pid>-<n>".
	ID string
	// Bridge is the bridge's name, and Gateway the root namespace's address on it.
	Bridge, Gateway string
	// Hosts are the hosts, in the order they were asked for.
	Hosts []*Host

	n, pid    int
	closeOnce sync.Once
	closeErr  error
}

// Host is one host of a [Net].
type Host struct {
	// Name is the host's name as asked for ("srv", "w1"), NS its namespace's name and Addr
	// its address.
	Name, NS, Addr string
}

var netCount atomic.Int32

// lockPath is the file lock that serializes the choice of subnets between processes.
var lockPath = filepath.Join(os.TempDir(), "sluice-fleet-netns.lock")

// NewNet makes a Net with one host per name (lower-case letters and digits, at most 8
// bytes). It first removes what earlier runs left ([RemoveStale]). On failure it removes
// what it made. It blocks for a few dozen ip commands.
func NewNet(names ...string) (*Net, error) {
	if len(names) == 0 || len(names) > 9 {
		return nil, fmt.Errorf("fleettest: 1 to 9 hosts, got %d", len(names))
	}
	for _, nm := range names {
		if !regexp.MustCompile(`^[a-z0-9]{1,8}$`).MatchString(nm) {
			return nil, fmt.Errorf("fleettest: host name %q: want 1 to 8 lower-case letters or digits", nm)
		}
	}
	if _, err := RemoveStale(); err != nil {
		return nil, err
	}
	k := int(netCount.Add(1)-1) % 10
	pid := os.Getpid()
	n := &Net{ID: fmt.Sprintf("%d-%d", pid, k), n: k, pid: pid, Bridge: fmt.Sprintf("sfb%d-%d", k, pid)}

	// The subnet is chosen, and its addresses assigned, under a lock, so that two runs at
	// once never take the same one.
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fleettest: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("fleettest: lock %s: %w", lockPath, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	n.Gateway = subnet + ".1"
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	for _, args := range [][]string{
		{"link", "add", n.Bridge, "type", "bridge"},
		{"addr", "add", n.Gateway + "/24", "dev", n.Bridge},
		{"link", "set", n.Bridge, "up"},
	} {
		if err := ip(args...); err != nil {
			return nil, fmt.Errorf("fleettest: %w", err)
		}
	}
	for i, nm := range names {
		h := &Host{Name: nm, NS: fmt.Sprintf("%s%s-%s", NamePrefix, n.ID, nm), Addr: fmt.Sprintf("%s.%d", subnet, 10+i)}
		n.Hosts = append(n.Hosts, h)
		veth, peer := fmt.Sprintf("sfv%d%d-%d", k, i, pid), fmt.Sprintf("sfp%d%d-%d", k, i, pid)
		for _, args := range [][]string{
			{"netns", "add", h.NS},
			{"link", "add", veth, "type", "veth", "peer", "name", peer},
			{"link", "set", peer, "netns", h.NS},
			{"link", "set", veth, "master", n.Bridge},
			{"link", "set", veth, "up"},
			{"-n", h.NS, "link", "set", "lo", "up"},
			{"-n", h.NS, "link", "set", peer, "name", "eth0"},
			{"-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
			{"-n", h.NS, "link", "set", "eth0", "up"},
		} {
			if err := ip(args...); err != nil {
				return nil, fmt.Errorf("fleettest: host %s: %w", nm, err)
			}
		}
	}
	ok = true
	return n, nil
}

// freeSubnet returns the first "10.77.N" (N from 1 to 254) that no interface address of the
// root namespace is in.
func freeSubnet() (string, error) {
	out, err := ipOut("-4", "-o", "addr", "show")
	if err != nil {
		return "", fmt.Errorf("fleettest: %w", err)
	}
	for i := 1; i < 255; i++ {
		s := fmt.Sprintf("10.77.%d", i)
		if !strings.Contains(out, " "+s+".") {
			return s, nil
		}
	}
	return "", errors.New("fleettest: every subnet 10.77.1.0/24 to 10.77.254.0/24 is in use")
}

// Host returns the host called name, or nil.
func (n *Net) Host(name string) *Host {
	for _, h := range n.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Close kills every process left in the hosts' namespaces and removes the namespaces (their
// interfaces go with them) and the bridge. It is safe to call more than once; later calls
// return the first one's result.
func (n *Net) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		for _, h := range n.Hosts {
			if err := removeNS(h.NS); err != nil {
				errs = append(errs, err)
			}
		}
		if linkExists(n.Bridge) {
			if err := ip("link", "del", n.Bridge); err != nil {
				errs = append(errs, err)
			}
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Command returns a command that runs name with args on host h (`ip netns exec`). The
// process is killed if the process that started it dies (Pdeathsig, kept across the exec
// of ip), so that a killed test leaves no worker running.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// removeNS kills the processes in namespace ns and removes it; a namespace that is not there
// is no error.
func removeNS(ns string) error {
	out, err := ipOut("netns", "pids", ns)
	if err != nil {
		if !nsExists(ns) {
			return nil
		}
		return fmt.Errorf("fleettest: %w", err)
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if err := ip("netns", "del", ns); err != nil && nsExists(ns) {
		return fmt.Errorf("fleettest: %w", err)
	}
	return nil
}

func nsExists(ns string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", ns))
	return err == nil
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// RemoveStale removes the namespaces (killing their processes) and the links of earlier runs
// whose process is gone, found by their names (see [NamePrefix]), and returns their names.
// What a live process made is left alone, so runs at once do not disturb one another.
func RemoveStale() ([]string, error) {
	var removed []string
	var errs []error
	out, err := ipOut("netns", "list")
	if err != nil {
		return nil, fmt.Errorf("fleettest: %w", err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := nsName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); alive(pid) {
			continue
		}
		if err := removeNS(f[0]); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, f[0])
	}
	links, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return removed, errors.Join(append(errs, fmt.Errorf("fleettest: %w", err))...)
	}
	for _, l := range links {
		m := linkName.FindStringSubmatch(l.Name())
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); alive(pid) {
			continue
		}
		if err := ip("link", "del", l.Name()); err != nil && linkExists(l.Name()) {
			errs = append(errs, fmt.Errorf("fleettest: %w", err))
			continue
		}
		removed = append(removed, l.Name())
	}
	return removed, errors.Join(errs...)
}
