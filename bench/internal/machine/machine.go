// Package machine describes the machine a benchmark runs on, for the line printed with every
// table: CPU model and count, GOMAXPROCS, Go version, OS/architecture and the date. It
// imports nothing beyond the standard library, so that a suite measuring its own memory can
// use it.
package machine

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Info returns the description, such as "Intel Xeon, 2 CPUs, GOMAXPROCS 2, go1.26.8
// linux/amd64, 2026-12-01 16:06 UTC".
func Info() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs, GOMAXPROCS %d, %s %s/%s, %s", model, runtime.NumCPU(),
		runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, time.Now().Format("2006-01-02 15:04 MST"))
}
