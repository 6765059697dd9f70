// Package chart describes a benchmark table as a bar chart and has it drawn into a PNG file:
// one horizontal bar per row, its value written at the bar's end, and an optional dashed
// line at the target. The suites call [Write] when run with -png; nothing here runs
// otherwise. The drawing itself (gonum.org/v1/plot) runs in a command of its own, see
// [Write].
package chart

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Row is one bar.
type Row struct {
	// Label names the row on the vertical axis.
	Label string
	// Value is the bar's length; a row with Value <= 0 (an invalid run) is drawn empty.
	Value float64
	// Text is written at the bar's end. Default: Value with three significant digits.
	Text string
	// Highlight draws the bar in the accent colour (the project's own rows).
	Highlight bool
}

// Chart is one table as a bar chart.
type Chart struct {
	// Title is drawn above the chart: what is measured, and how (the run's machine and date).
	Title string
	// Unit labels the value axis, such as "msg/s" or "x limit".
	Unit string
	// Rows are drawn top to bottom in this order.
	Rows []Row
	// Target, when > 0, draws a dashed line at that value, labelled TargetLabel.
	Target      float64
	TargetLabel string
}

// File is one chart and the PNG file it is drawn into.
type File struct {
	Path  string
	Chart Chart
}

// Write draws the charts into their PNG files (creating their directories) by running the
// drawing command of this package's draw directory with "go run" from its source directory:
// the suites do not link gonum.org/v1/plot, whose start-up would count in the memory they
// measure. It needs the go command and the source tree, as `go run ./suite` has; relative
// paths are relative to the current directory.
func Write(files ...File) error {
	if len(files) == 0 {
		return nil
	}
	for i := range files {
		if len(files[i].Chart.Rows) == 0 {
			return fmt.Errorf("chart %s: no rows", files[i].Path)
		}
		abs, err := filepath.Abs(files[i].Path)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		files[i].Path = abs
	}
	spec, err := json.Marshal(files)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return errors.New("chart: cannot find the draw command's source")
	}
	cmd := exec.Command("go", "run", "./draw")
	cmd.Dir = filepath.Dir(self)
	cmd.Stdin = bytes.NewReader(spec)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chart: go run ./draw in %s: %v\n%s", cmd.Dir, err, out)
	}
	return nil
}

// FormatValue writes v with three significant digits and a thousands separator for large
// values ("1,234,567", "0.94").
func FormatValue(v float64) string {
	if v <= 0 {
		return "INVALID"
	}
	if v >= 1000 {
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, r := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	return fmt.Sprintf("%.3g", v)
}

// PartPath returns the file of one part of a suite whose -png flag is base:
// PartPath("results/pipeline.png", "throughput") is "results/pipeline-throughput.png".
func PartPath(base, part string) string {
	ext := filepath.Ext(base)
	if ext == "" {
		ext = ".png"
	}
	return strings.TrimSuffix(base, filepath.Ext(base)) + "-" + part + ext
}
