import { useMemo } from 'react'
import type uPlot from 'uplot'
import { Chart } from './Chart'
import { timeOptions, type Line } from './chartOptions'

interface Props {
  title: string
  lines: Line[]
  data: uPlot.AlignedData
  bucket: 'hour' | 'day'
  unit?: string
  testId?: string
}

/** A titled line chart over the period's buckets. */
export function TimeChart({ title, lines, data, bucket, unit = '', testId }: Props) {
  const shape = lines.map((l) => `${l.label}:${l.scale ?? 'y'}`).join('|')
  // built again when the series or the bucket change, not on each render (a new chart each time)
  const options = useMemo(() => timeOptions(lines, bucket, unit), [shape, bucket, unit])
  return (
    <figure className="admin-chart" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <Chart options={options} data={data}
        label={`${title}: ${lines.map((l) => l.label).join(', ')}`} />
    </figure>
  )
}
