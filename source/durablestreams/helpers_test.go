package durablestreams_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/refserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	refserver.StopShared()
	os.Exit(code)
}

// ref returns the shared reference server (long-poll timeout 500ms), skipping the test when
// Node is unavailable and not required.
func ref(t testing.TB) *refserver.Server {
	t.Helper()
	return refserver.Shared(t, refserver.Options{LongPollTimeout: 500 * time.Millisecond})
}

// name returns a unique stream name.
func name(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	return t.Name() + "-" + hex.EncodeToString(b[:])
}

// fastRetry is a retry policy with millisecond backoffs, for fault tests.
func fastRetry() dsclient.Option {
	p := dsclient.DefaultRetryPolicy()
	p.InitialDelay, p.MaxDelay = time.Millisecond, 5*time.Millisecond
	return dsclient.WithRetry(p)
}

type event struct {
	N int    `json:"n"`
	S string `json:"s"`
}
