// Command draw draws benchmark charts as PNG files with gonum.org/v1/plot. The suites run it
// through chart.Write (go run) rather than linking it: plot parses its fonts when the
// program starts (about 4 MiB), which would count in the memory the suites measure in their
// own processes. It reads a JSON array of {"Path":..., "Chart":{...}} on standard input.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/sluice-go/sluice/bench/internal/chart"
)

func main() {
	var files []chart.File
	if err := json.NewDecoder(os.Stdin).Decode(&files); err != nil {
		fmt.Fprintln(os.Stderr, "draw:", err)
		os.Exit(2)
	}
	for _, f := range files {
		if err := writePNG(f.Chart, f.Path); err != nil {
			fmt.Fprintln(os.Stderr, "draw:", err)
			os.Exit(1)
		}
	}
}

var (
	plain  = color.RGBA{R: 0x9e, G: 0xae, B: 0xc0, A: 0xff}
	accent = color.RGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff}
	target = color.RGBA{R: 0xc0, G: 0x39, B: 0x2b, A: 0xff}
)

// writePNG draws the chart into a PNG file at path, creating its directory. It returns an
// error if the chart has no row or the file cannot be written.
func writePNG(c chart.Chart, path string) error {
	if len(c.Rows) == 0 {
		return errors.New("chart: no rows")
	}
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.Unit
	p.X.Min = 0
	p.X.Tick.Marker = ticks{}
	n := len(c.Rows)
	labels := make([]string, n)
	maxV := c.Target
	for i, r := range c.Rows {
		maxV = max(maxV, r.Value)
		labels[n-1-i] = r.Label // row 0 on top
	}
	if maxV <= 0 {
		maxV = 1
	}
	p.Add(plotter.NewGrid())
	var texts plotter.XYLabels
	for i, r := range c.Rows {
		y := float64(n - 1 - i)
		v := max(r.Value, 0)
		bar, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(14))
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		bar.Horizontal = true
		bar.XMin = y
		bar.LineStyle.Width = 0
		bar.Color = plain
		if r.Highlight {
			bar.Color = accent
		}
		p.Add(bar)
		text := r.Text
		if text == "" {
			text = chart.FormatValue(r.Value)
		}
		texts.XYs = append(texts.XYs, plotter.XY{X: v + maxV*0.01, Y: y})
		texts.Labels = append(texts.Labels, text)
	}
	lbl, err := plotter.NewLabels(texts)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	for i := range lbl.TextStyle {
		lbl.TextStyle[i].YAlign = draw.YCenter
	}
	p.Add(lbl)
	if c.Target > 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: c.Target, Y: -0.5}, {X: c.Target, Y: float64(n) - 0.5}})
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		l.Color = target
		l.Width = vg.Points(1.5)
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		if c.TargetLabel != "" {
			p.X.Label.Text += "        (dashed line: " + c.TargetLabel + ")"
		}
	}
	longest := 0
	for _, t := range texts.Labels {
		longest = max(longest, len(t))
	}
	p.X.Max = maxV * min(1.1+0.013*float64(longest), 1.7) // room for the texts
	p.NominalY(labels...)
	height := vg.Length(n)*vg.Points(22) + vg.Inch*1.4
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if err := p.Save(9*vg.Inch, height, path); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

// ticks are plot's default ticks, labelled like the values.
type ticks struct{}

func (ticks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label == "" {
			continue
		}
		if ts[i].Value == 0 {
			ts[i].Label = "0"
		} else {
			ts[i].Label = strings.TrimSuffix(chart.FormatValue(ts[i].Value), ".00")
		}
	}
	return ts
}
