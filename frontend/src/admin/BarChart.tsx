import { useMemo } from 'react'
import { Chart } from './Chart'
import { barOptions } from './chartOptions'
import type { Bars } from './shape'

interface Props {
  title: string
  bars: Bars
  series: [string] | [string, string]
  unit?: string
  testId?: string
  format?: (value: number | null) => string
}

const plain = (value: number | null): string => (value === null ? '—' : String(value))

/** Horizontal bars with their figures in a table below: the chart shows the shape, the table
 * the exact numbers (and reads aloud). */
export function BarChart({ title, bars, series, unit = '', testId, format = plain }: Props) {
  const { labels, data } = bars
  // built again when the categories or series change, not on each render
  const options = useMemo(() => barOptions(labels, series, unit),
    [labels.join('\u0000'), series.join('\u0000'), unit])
  return (
    <figure className="admin-chart" data-testid={testId}>
      <figcaption>{title}</figcaption>
      {labels.length === 0 ? <p className="muted">Nothing in this period.</p> : (
        <>
          <Chart options={options} data={data} height={60 + 28 * labels.length}
            label={`${title}, as bars`} />
          <table className="chart-table">
            <thead>
              <tr><th />{series.map((s) => <th key={s}>{s}</th>)}</tr>
            </thead>
            <tbody>
              {labels.map((label, i) => (
                <tr key={label} data-label={label}>
                  <th scope="row">{label}</th>
                  {series.map((s, k) => <td key={s}>{format(data[k + 1][i] ?? null)}</td>)}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </figure>
  )
}
