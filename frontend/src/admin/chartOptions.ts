/** uPlot options in the studio's dark theme: time series (lines) and categories (bars). */
import uPlot from 'uplot'

/** Everything a chart needs but its size, which follows the page. */
export type ChartOptions = Omit<uPlot.Options, 'width' | 'height'>

/** Series colours, distinguishable on the dark panels and by people with red-green
 * colour blindness (Okabe-Ito). */
export const COLOURS = ['#56b4e9', '#e69f00', '#009e73', '#f0e442', '#cc79a7', '#d55e00', '#0072b2']

const TEXT = '#a4abb8'
const GRID = { stroke: '#353a44', width: 1 }
const FONT = '12px system-ui, sans-serif'

/** A lone bucket is drawn half a bucket either side, not over uPlot's default span of years. */
const BUCKET_S = { hour: 3600, day: 86_400 }

export interface Line {
  label: string
  /** Which y scale: counts on the left, rates or times on the right. */
  scale?: 'y' | 'rate'
}

function axis(extra: uPlot.Axis = {}): uPlot.Axis {
  return { stroke: TEXT, font: FONT, grid: GRID, ticks: GRID, ...extra }
}

/** Lines over time; a second axis on the right where a series is a percentage. */
export function timeOptions(lines: Line[], bucket: 'hour' | 'day', unit = ''): ChartOptions {
  const rate = lines.some((l) => l.scale === 'rate')
  return {
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: {
      x: { time: true, range: (_u, min, max) => (min === max
        ? [min - BUCKET_S[bucket] / 2, max + BUCKET_S[bucket] / 2] : [min, max]) },
      y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
      ...(rate ? { rate: { range: [0, 100] } } : {}) },
    axes: [
      axis({ space: bucket === 'hour' ? 60 : 50 }),
      axis({ values: (_u, splits) => splits.map((v) => `${v}${unit}`) }),
      ...(rate ? [axis({ scale: 'rate', side: 1, grid: { show: false },
        values: (_u: uPlot, splits: number[]) => splits.map((v) => `${v} %`) })] : []),
    ],
    series: [
      { label: bucket === 'hour' ? 'Hour (UTC)' : 'Day (UTC)' },
      ...lines.map((l, i): uPlot.Series => ({
        label: l.label, scale: l.scale ?? 'y', stroke: COLOURS[i % COLOURS.length], width: 2,
        points: { size: 5 }, spanGaps: false,
      })),
    ],
  }
}

/** Horizontal bars, one row per category (labels read in full on the left), several series
 * side by side (one, or two: uPlot aligns a bar on either side of its row). */
export function barOptions(
  labels: string[], series: [string] | [string, string], unit = '',
): ChartOptions {
  const longest = Math.max(4, ...labels.map((l) => l.length))
  const size = 0.8 / series.length
  return {
    legend: { show: false }, // the table below names the series and gives the values
    cursor: { show: false },
    scales: {
      x: { time: false, ori: 1, dir: -1, range: [-0.5, Math.max(labels.length, 1) - 0.5] },
      y: { ori: 0, range: (_u, min, max) => [Math.min(0, min), Math.max(1, max) * 1.05] },
    },
    axes: [
      axis({ side: 3, grid: { show: false }, size: Math.min(300, 12 + longest * 7),
        splits: () => labels.map((_, i) => i),
        values: (_u, splits) => splits.map((i) => labels[i] ?? '') }),
      axis({ side: 2, space: unit ? 60 : 40,
        values: (_u, splits) => splits.map((v) => `${v}${unit}`) }),
    ],
    series: [
      { label: '' },
      ...series.map((label, i): uPlot.Series => ({
        label, stroke: COLOURS[i % COLOURS.length], fill: `${COLOURS[i % COLOURS.length]}cc`,
        points: { show: false },
        paths: uPlot.paths.bars?.({
          size: [size, 40], align: series.length === 1 ? 0 : i === 0 ? -1 : 1 }),
      })),
    ],
  }
}
