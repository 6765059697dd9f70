package dstest

import "testing"

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"events/*", "events/a", true},
		{"events/*", "events", false},
		{"events/*", "events/a/b", false},
		{"events/*", "other/a", false},
		{"events/**", "events", true},
		{"events/**", "events/a", true},
		{"events/**", "events/a/b/c", true},
		{"**", "a/b", true},
		{"**/x", "x", true},
		{"**/x", "a/b/x", true},
		{"**/x", "a/b/y", false},
		{"a/**/z", "a/z", true},
		{"a/**/z", "a/b/c/z", true},
		{"a/**/z", "a/b/c/y", false},
		{"*/b/*", "a/b/c", true},
		{"*/b/*", "a/x/c", false},
		{"/events/*/", "events/a", true},  // slashes around the pattern are ignored
		{"events/*", "/events//a/", true}, // and empty segments of the path
		{"lit%2Astar", "lit*star", true},  // %2A is a literal star
		{"lit%2astar", "litXstar", false},
		{"events/a", "events/a", true},
		{"events/a", "events/ab", false},
		{"*", "", false},
		{"**", "", true},
	} {
		if got := parseGlob(tc.pattern).match(tc.path); got != tc.want {
			t.Errorf("%q matching %q: %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func TestGlobAllocates(t *testing.T) {
	g := parseGlob("tenants/*/events/**/log")
	if n := testing.AllocsPerRun(100, func() { g.match("tenants/t1/events/a/b/c/log") }); n != 0 {
		t.Fatalf("match allocates %v times", n)
	}
}
