package main

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var (
	weftColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	peerColor = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// writeCharts draws, into dir: ratios.png (weft/peer ratio of the median
// CPU per item and peak RSS per workload, 1.0 marked), and per workload
// cpu-<w>.png (CPU per item of every run in ABBA order) and rss-<w>.png
// (RSS over the measurement window of every run). It returns the file names.
func writeCharts(dir string, rep *report) ([]string, error) {
	var files []string
	wls := workloadsIn(rep)
	var compared []string // workloads with a peer: the ratios chart
	for _, wl := range wls {
		if w, ok := findWorkload(wl); ok && !w.weftAlone() {
			compared = append(compared, wl)
		}
	}

	if len(compared) > 0 {
		p := plot.New()
		p.Title.Text = "weft / peer, median of the runs (below 1: weft uses less)"
		p.Y.Label.Text = "ratio weft / peer"
		var cpuR, rssR plotter.Values
		for _, wl := range compared {
			w, pe := summarizeSide(sidesOf(rep, wl, sideWeft)), summarizeSide(sidesOf(rep, wl, sidePeer))
			cpuR = append(cpuR, safeRatio(w.CPU.Median, pe.CPU.Median))
			rssR = append(rssR, safeRatio(w.Peak.Median, pe.Peak.Median))
		}
		bw := vg.Points(14)
		cb, err := plotter.NewBarChart(cpuR, bw)
		if err != nil {
			return nil, err
		}
		cb.Color, cb.Offset = weftColor, -bw/2
		rb, err := plotter.NewBarChart(rssR, bw)
		if err != nil {
			return nil, err
		}
		rb.Color, rb.Offset = peerColor, bw/2
		one, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(compared)) - 0.5, Y: 1}})
		if err != nil {
			return nil, err
		}
		one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(cb, rb, one, plotter.NewGrid())
		p.Legend.Add("CPU per item", cb)
		p.Legend.Add("peak RSS", rb)
		p.Legend.Top = true
		p.Legend.Left = true
		p.NominalX(compared...)
		p.Y.Min = 0
		p.Y.Max = 1.3 // room for the legend above the 1.0 line
		for _, v := range append(append(plotter.Values{}, cpuR...), rssR...) {
			p.Y.Max = max(p.Y.Max, v*1.25)
		}
		if err := p.Save(vg.Points(120+70*float64(len(compared))), 4*vg.Inch, filepath.Join(dir, "ratios.png")); err != nil {
			return nil, err
		}
		files = append(files, "ratios.png")
	}

	for _, wl := range wls {
		ws, ps := sidesOf(rep, wl, sideWeft), sidesOf(rep, wl, sidePeer)
		unit := ""
		if len(ws) > 0 {
			unit = ws[0].Unit
		}
		scale, label := cpuScale(unit, append(ws, ps...))

		cp := plot.New()
		cp.Title.Text = wl + ": " + label + " per run (ABBA order)"
		cp.X.Label.Text = "run"
		cp.Y.Label.Text = label
		for i, side := range [][]sample{ws, ps} {
			var xy plotter.XYs
			for _, s := range side {
				xy = append(xy, plotter.XY{X: float64(s.Order), Y: s.CPUPerItem * scale})
			}
			if len(xy) == 0 {
				continue
			}
			sc, err := plotter.NewScatter(xy)
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle.Color = []color.Color{weftColor, peerColor}[i]
			sc.GlyphStyle.Radius = vg.Points(4)
			sc.GlyphStyle.Shape = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}}[i]
			cp.Add(sc)
			cp.Legend.Add([]string{"weft", peerShort(wl)}[i], sc)
		}
		cp.Add(plotter.NewGrid())
		cp.Y.Min = 0
		cp.Y.Max *= 1.3 // headroom for the legend
		cp.X.Min, cp.X.Max = 0.5, float64(len(ws)+len(ps))+0.5
		cp.Legend.Top = true
		name := "cpu-" + wl + ".png"
		if err := cp.Save(5*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		files = append(files, name)

		rp := plot.New()
		rp.Title.Text = wl + ": RSS during the measurement window"
		rp.X.Label.Text = "seconds"
		rp.Y.Label.Text = "RSS MiB"
		for i, side := range [][]sample{ws, ps} {
			for j, s := range side {
				var xy plotter.XYs
				for _, pt := range s.Points {
					xy = append(xy, plotter.XY{X: pt.T, Y: pt.RSSMiB})
				}
				if len(xy) < 2 {
					continue
				}
				l, err := plotter.NewLine(xy)
				if err != nil {
					return nil, err
				}
				l.Color = []color.Color{weftColor, peerColor}[i]
				l.Width = vg.Points(1)
				rp.Add(l)
				if j == 0 {
					rp.Legend.Add([]string{"weft", peerShort(wl)}[i], l)
				}
			}
		}
		rp.Add(plotter.NewGrid())
		rp.Y.Min = 0
		rp.Legend.Top = true
		rp.Legend.Left = true
		name = "rss-" + wl + ".png"
		if err := rp.Save(5*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	return files, nil
}

func safeRatio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// cpuScale picks the unit of a CPU chart's axis from the largest figure.
func cpuScale(unit string, ss []sample) (float64, string) {
	if unit == "second" {
		return 100, "CPU, % of one core"
	}
	top := 0.0
	for _, s := range ss {
		top = max(top, s.CPUPerItem)
	}
	switch {
	case top < 1e-3:
		return 1e6, fmt.Sprintf("CPU µs per %s", unit)
	case top < 1:
		return 1e3, fmt.Sprintf("CPU ms per %s", unit)
	}
	return 1, fmt.Sprintf("CPU s per %s", unit)
}
