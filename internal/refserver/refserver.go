package refserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the pinned version of @durable-streams/server.
const Version = "0.3.7"

// RequireEnv is the environment variable that turns a missing Node into a test failure.
const RequireEnv = "SLUICE_REQUIRE_REFSERVER"

// Options configures the reference server. The zero value is usable.
type Options struct {
	// LongPollTimeout is how long a long-poll read waits for data. Default: 30s (the server's).
	LongPollTimeout time.Duration
	// DataDir enables the file-backed store in that directory. Default: in memory.
	DataDir string
	// Port to listen on. Default: 0, an unused port.
	Port int
	// Host is the address to listen on; the server's URL and the callback URLs of its
	// webhooks name it. Default: 127.0.0.1.
	Host string
	// Webhooks enables webhook subscriptions (the server's webhooks option); pull-wake
	// subscriptions are always on. Default: off.
	Webhooks bool
}

// Server is a running reference server. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, such as http://127.0.0.1:41234 (streams live under /v1/stream/).
	URL string

	cmd   *exec.Cmd
	stdin interface{ Close() error }
	done  chan struct{}
	once  sync.Once
	err   error
}

// Dir returns the directory holding package.json, the lockfile and serve.mjs.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "node")
}

// Available reports whether node and npm are on PATH.
func Available() bool {
	_, e1 := exec.LookPath("node")
	_, e2 := exec.LookPath("npm")
	return e1 == nil && e2 == nil
}

var installMu sync.Mutex

// Install installs the lockfile's packages in [Dir] unless the pinned server is already installed. It blocks until
// done and is safe to call from several processes at once (it takes a file lock).
func Install(ctx context.Context) error {
	installMu.Lock()
	defer installMu.Unlock()
	dir := Dir()
	if installed(dir) {
		return nil
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("refserver: install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("refserver: install lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if installed(dir) {
		return nil
	}
	// `npm install --no-save` installs exactly what the committed lockfile pins without rewriting
	// it. (`npm ci` refuses this lockfile: the registry mirror omits the other platforms' optional
	// native packages, which `npm ci` counts as out of sync.)
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("refserver: npm install in %s: %w\n%s", dir, err, out)
	}
	if !serverPackage(dir) {
		return fmt.Errorf("refserver: npm install in %s did not install @durable-streams/server %s", dir, Version)
	}
	// Only now is the install complete: another process that checks installed without the
	// lock must not find the server's package while npm is still writing its dependencies.
	if err := os.WriteFile(filepath.Join(dir, "node_modules", installedMarker), []byte(Version), 0o644); err != nil {
		return fmt.Errorf("refserver: %w", err)
	}
	return nil
}

// installedMarker is written into node_modules once an install has completed.
const installedMarker = ".sluice-refserver-installed"

// installed reports whether a completed install of the pinned server is in dir.
func installed(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", installedMarker))
	return err == nil && string(b) == Version && serverPackage(dir)
}

// serverPackage reports whether the pinned server's package is in dir's node_modules.
func serverPackage(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "@durable-streams", "server", "package.json"))
	if err != nil {
		return false
	}
	var p struct {
		Version string `json:"version"`
	}
	return json.Unmarshal(b, &p) == nil && p.Version == Version
}

// Start installs the server if needed and starts it. It blocks until the server listens or ctx
// ends; ctx bounds only the start. Stop the server with [Server.Stop] or [Server.Kill].
func Start(ctx context.Context, opts Options) (*Server, error) {
	if !Available() {
		return nil, errors.New("refserver: node and npm are required")
	}
	if err := Install(ctx); err != nil {
		return nil, err
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	cfg := map[string]any{"host": host, "port": opts.Port}
	if opts.Webhooks {
		cfg["webhooks"] = true
	}
	if opts.LongPollTimeout > 0 {
		cfg["longPollTimeout"] = opts.LongPollTimeout.Milliseconds()
	}
	if opts.DataDir != "" {
		cfg["dataDir"] = opts.DataDir
	}
	arg, _ := json.Marshal(cfg)
	cmd := exec.Command("node", "serve.mjs", string(arg))
	cmd.Dir = Dir()
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("refserver: start node: %w", err)
	}
	s := &Server{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var line struct {
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.URL != "" {
				select {
				case urlc <- line.URL:
				default:
				}
			}
		}
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	select {
	case u := <-urlc:
		s.URL = strings.TrimRight(u, "/")
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("refserver: node exited before listening: %v", s.err)
	case <-ctx.Done():
		s.Kill()
		return nil, fmt.Errorf("refserver: waiting for the server to listen: %w", ctx.Err())
	}
}

// StreamURL returns the URL of the named stream under the server's /v1/stream/ prefix.
func (s *Server) StreamURL(name string) string {
	return s.URL + "/v1/stream/" + strings.TrimLeft(name, "/")
}

// Stop asks the server to stop (closing its stdin, then SIGTERM) and waits for it to exit,
// killing it after 5 seconds.
func (s *Server) Stop() error {
	s.once.Do(func() {
		s.stdin.Close()
		select {
		case <-s.done:
			return
		case <-time.After(2 * time.Second):
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(3 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	return nil
}

// Kill stops the server with SIGKILL (a crash) and waits for it to exit.
func (s *Server) Kill() {
	s.once.Do(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
}

// Fault is a fault for the server's test endpoint (POST /_test/inject-error). Zero fields are
// omitted. Path is the request path, such as /v1/stream/name.
type Fault struct {
	Path              string `json:"path"`
	Status            int    `json:"status,omitempty"`
	Count             int    `json:"count,omitempty"`
	RetryAfter        int    `json:"retryAfter,omitempty"`
	DelayMs           int    `json:"delayMs,omitempty"`
	DropConnection    bool   `json:"dropConnection,omitempty"`
	TruncateBodyBytes int    `json:"truncateBodyBytes,omitempty"`
	Method            string `json:"method,omitempty"`
}

// InjectFault installs f on the server; it applies to the next f.Count requests on f.Path.
func (s *Server) InjectFault(ctx context.Context, f Fault) error {
	body, _ := json.Marshal(f)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/_test/inject-error", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("refserver: inject fault: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("refserver: inject fault: status %d", resp.StatusCode)
	}
	return nil
}

// ForTest starts a server for t and stops it when t ends. It skips t when Node is absent, unless
// SLUICE_REQUIRE_REFSERVER=1, when it fails t.
func ForTest(t testing.TB, opts Options) *Server {
	t.Helper()
	if !Available() {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("refserver: node and npm are required (%s=1)", RequireEnv)
		}
		t.Skipf("refserver: node/npm not installed; set %s=1 to make this a failure", RequireEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("refserver: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// shared holds the servers that the tests of one package share, by options: starting Node per
// test would dominate a package's run time.
var shared struct {
	mu      sync.Mutex
	servers map[Options]*sharedServer
}

type sharedServer struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the server with opts that the tests of this process share, starting it on
// first use; each test uses its own stream names. It skips t when Node is absent, unless
// SLUICE_REQUIRE_REFSERVER=1, when it fails t. Call [StopShared] from TestMain after the tests
// ran. Safe for concurrent use.
func Shared(t testing.TB, opts Options) *Server {
	t.Helper()
	if !Available() {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("refserver: node and npm are required (%s=1)", RequireEnv)
		}
		t.Skipf("refserver: node/npm not installed; set %s=1 to make this a failure", RequireEnv)
	}
	shared.mu.Lock()
	if shared.servers == nil {
		shared.servers = map[Options]*sharedServer{}
	}
	s := shared.servers[opts]
	if s == nil {
		s = &sharedServer{}
		shared.servers[opts] = s
	}
	shared.mu.Unlock()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.srv, s.err = Start(ctx, opts)
	})
	if s.err != nil {
		t.Fatalf("refserver: %v", s.err)
	}
	return s.srv
}

// StopShared stops every server [Shared] started. TestMain calls it after m.Run.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, s := range shared.servers {
		if s.srv != nil {
			s.srv.Stop()
		}
	}
	shared.servers = nil
}
