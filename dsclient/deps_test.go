package dsclient_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The client stands alone: neither it nor anything it imports is part of the pipeline
// runtime, and it needs nothing beyond the standard library (and golang.org/x).
func TestImportsNothingOfThePipeline(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list the package's dependencies")
	}
	out, err := exec.Command(goCmd, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/sluice-go/sluice/"
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, module+"pipeline"), strings.HasPrefix(dep, module+"batcher"),
			strings.HasPrefix(dep, module+"ack"), strings.HasPrefix(dep, module+"source"),
			strings.HasPrefix(dep, module+"sink"), strings.HasPrefix(dep, module+"metrics"):
			t.Errorf("the client depends on %s", dep)
		case strings.Contains(strings.SplitN(dep, "/", 2)[0], ".") && !strings.HasPrefix(dep, module) && !strings.HasPrefix(dep, "golang.org/x/"):
			t.Errorf("the client depends on a third-party package: %s", dep)
		}
	}
}
