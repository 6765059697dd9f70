//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package ack

import (
	"errors"
	"os"
	"syscall"
)

// crossProcessLock reports whether lockFile excludes other processes.
const crossProcessLock = true

// lockFile takes an exclusive advisory lock (flock) on the file name, creating it if
// missing, and returns the function that releases it. It blocks while another process, or
// another call in this one, holds the lock. The lock goes with the process: a crash
// releases it.
func lockFile(name string) (unlock func(), err error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing the last descriptor releases the lock
}
