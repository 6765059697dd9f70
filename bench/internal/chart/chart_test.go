package chart

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// Charts are drawn into valid PNGs whose height grows with their rows.
func TestWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the draw command")
	}
	dir := t.TempDir()
	chartOf := func(rows int) Chart {
		c := Chart{Title: "t\nsecond line", Unit: "msg/s", Target: 0.9, TargetLabel: "target 0.9x"}
		for i := range rows {
			c.Rows = append(c.Rows, Row{Label: "row", Value: float64(i) * 1000, Highlight: i == 1})
		}
		return c
	}
	small, large := filepath.Join(dir, "sub", "small.png"), filepath.Join(dir, "large.png")
	if err := Write(File{small, chartOf(2)}, File{large, chartOf(8)}); err != nil {
		t.Fatal(err)
	}
	height := func(path string) int {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return img.Bounds().Dy()
	}
	if h2, h8 := height(small), height(large); h8 <= h2 {
		t.Fatalf("8 rows: %d px high, 2 rows: %d px", h8, h2)
	}
	if err := Write(File{filepath.Join(dir, "empty.png"), Chart{}}); err == nil {
		t.Fatal("a chart without rows was written")
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[float64]string{1234567: "1,234,567", 0.944: "0.944", 999: "999", 0: "INVALID"} {
		if got := FormatValue(in); got != want {
			t.Errorf("FormatValue(%v) = %q, want %q", in, got, want)
		}
	}
	if got := PartPath("results/pipeline.png", "crash"); got != "results/pipeline-crash.png" {
		t.Errorf("PartPath = %q", got)
	}
	if got := PartPath("x", "a"); got != "x-a.png" {
		t.Errorf("PartPath = %q", got)
	}
}
