package dstest

import "strings"

// A glob is a subscription pattern over stream-root-relative paths (PROTOCOL.md 6.2): "*"
// matches exactly one path segment, "**" zero or more, any other segment itself ("%2A" in
// it stands for a literal "*"). Empty segments (leading, trailing or doubled slashes) are
// ignored in patterns and paths alike, as on the reference server.
type glob []string

// parseGlob splits a pattern into its segments.
func parseGlob(pattern string) glob {
	var g glob
	for seg := range strings.SplitSeq(pattern, "/") {
		if seg == "" {
			continue
		}
		if seg != "*" && seg != "**" {
			seg = strings.NewReplacer("%2A", "*", "%2a", "*").Replace(seg)
		}
		g = append(g, seg)
	}
	return g
}

// match reports whether path matches g. It allocates nothing.
func (g glob) match(path string) bool {
	return matchSegments(g, path)
}

// nextSegment returns the first non-empty segment of path and the rest after it; ok is false
// when path has no segment left.
func nextSegment(path string) (seg, rest string, ok bool) {
	for {
		if path == "" {
			return "", "", false
		}
		seg, rest, _ = strings.Cut(path, "/")
		if seg != "" {
			return seg, rest, true
		}
		path = rest
	}
}

func matchSegments(g glob, path string) bool {
	for i, p := range g {
		if p == "**" {
			rest := g[i+1:]
			// "**" takes zero segments, then one more at a time.
			for {
				if matchSegments(rest, path) {
					return true
				}
				var ok bool
				if _, path, ok = nextSegment(path); !ok {
					return false
				}
			}
		}
		seg, rest, ok := nextSegment(path)
		if !ok || (p != "*" && p != seg) {
			return false
		}
		path = rest
	}
	_, _, more := nextSegment(path)
	return !more
}
