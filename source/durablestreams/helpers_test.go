package durablestreams_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/refserver"
)

// The reference server is shared by the tests of this package: starting Node per test would
// dominate the run time. Each test uses its own stream names.
var (
	refOnce sync.Once
	refSrv  *refserver.Server
	refErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if refSrv != nil {
		refSrv.Stop()
	}
	os.Exit(code)
}

// ref returns the shared reference server (long-poll timeout 500ms), skipping the test when
// Node is unavailable and not required.
func ref(t testing.TB) *refserver.Server {
	t.Helper()
	if !refserver.Available() {
		if os.Getenv(refserver.RequireEnv) == "1" {
			t.Fatalf("node and npm are required (%s=1)", refserver.RequireEnv)
		}
		t.Skipf("node/npm not installed; set %s=1 to make this a failure", refserver.RequireEnv)
	}
	refOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		refSrv, refErr = refserver.Start(ctx, refserver.Options{LongPollTimeout: 500 * time.Millisecond})
	})
	if refErr != nil {
		t.Fatalf("reference server: %v", refErr)
	}
	return refSrv
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
