// Package chart draws a benchmark table as a PNG: one horizontal bar per row, its value
// written at the bar's end, and an optional dashed line at the target. The suites call it
// when run with -png; nothing here runs otherwise.
package chart

import (
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

var (
	plain  = color.RGBA{R: 0x9e, G: 0xae, B: 0xc0, A: 0xff}
	accent = color.RGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff}
	target = color.RGBA{R: 0xc0, G: 0x39, B: 0x2b, A: 0xff}
)

// WritePNG draws the chart into a PNG file at path, creating its directory. It returns an
// error if the chart has no row or the file cannot be written.
func (c Chart) WritePNG(path string) error {
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
			text = formatValue(r.Value)
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
	p.X.Max = maxV * 1.18 // room for the texts
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
			ts[i].Label = strings.TrimSuffix(formatValue(ts[i].Value), ".00")
		}
	}
	return ts
}

// formatValue writes v with three significant digits and a thousands separator for large
// values ("1,234,567", "0.94").
func formatValue(v float64) string {
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
