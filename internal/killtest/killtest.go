package killtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Ready is the line a child prints on its standard output once it has done its first unit of
// work (for a pipeline: its first batch is written).
const Ready = "killtest: working"

// Println prints [Ready] on standard output; a child calls it once, when it is working.
func Println() { fmt.Println(Ready) }

// Start starts cmd, whose standard output must be unset, copies what the child prints to
// standard error (but the [Ready] line), and blocks until the child has printed [Ready]. It
// fails t if the child ends before that or has not printed it within the given time. The
// returned channel receives the result of cmd.Wait once the child has ended and its output
// is read. Start must be called from the test's goroutine.
func Start(t testing.TB, cmd *exec.Cmd, within time.Duration) <-chan error {
	t.Helper()
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if sc.Text() == Ready && !seen {
				seen = true
				close(ready)
				continue
			}
			fmt.Fprintln(os.Stderr, sc.Text())
		}
		exited <- cmd.Wait()
	}()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case <-ready:
		return exited
	case err := <-exited:
		t.Fatalf("the child ended before it was working: %v", err)
	case <-timer.C:
		cmd.Process.Kill()
		<-exited
		t.Fatalf("the child was not working within %v", within)
	}
	return nil
}
