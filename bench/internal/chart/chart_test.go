package chart

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// A chart is a valid PNG whose height grows with its rows.
func TestWritePNG(t *testing.T) {
	dir := t.TempDir()
	height := func(rows int) int {
		c := Chart{Title: "t", Unit: "msg/s", Target: 0.9, TargetLabel: "target 0.9x"}
		for i := range rows {
			c.Rows = append(c.Rows, Row{Label: "row", Value: float64(i), Highlight: i == 1})
		}
		path := filepath.Join(dir, "sub", "c.png")
		if err := c.WritePNG(path); err != nil {
			t.Fatal(err)
		}
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
	if h2, h8 := height(2), height(8); h8 <= h2 {
		t.Fatalf("8 rows: %d px high, 2 rows: %d px", h8, h2)
	}
	if err := (Chart{}).WritePNG(filepath.Join(dir, "empty.png")); err == nil {
		t.Fatal("a chart without rows was written")
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[float64]string{1234567: "1,234,567", 0.944: "0.944", 999: "999", 0: "INVALID"} {
		if got := formatValue(in); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", in, got, want)
		}
	}
	if got := PartPath("results/pipeline.png", "crash"); got != "results/pipeline-crash.png" {
		t.Errorf("PartPath = %q", got)
	}
	if got := PartPath("x", "a"); got != "x-a.png" {
		t.Errorf("PartPath = %q", got)
	}
}
