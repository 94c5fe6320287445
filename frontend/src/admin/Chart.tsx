import { useEffect, useRef } from 'react'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import type { ChartOptions } from './chartOptions'

interface Props {
  /** Everything but the size, which follows the element's width. */
  options: ChartOptions
  data: uPlot.AlignedData
  height?: number
  label: string
}

/** A uPlot chart that fills its container's width. It is made again when the options change
 * (series come and go) and only given new data otherwise. */
export function Chart({ options, data, height = 220, label }: Props) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)

  useEffect(() => {
    const el = box.current
    if (!el) return
    const chart = new uPlot({ ...options, width: Math.max(el.clientWidth, 200), height }, data, el)
    plot.current = chart
    const resize = new ResizeObserver(() => {
      chart.setSize({ width: Math.max(el.clientWidth, 200), height })
    })
    resize.observe(el)
    return () => {
      resize.disconnect()
      chart.destroy()
      plot.current = null
    }
    // the data goes in by setData below: a new chart only for new options
  }, [options, height])

  useEffect(() => { plot.current?.setData(data) }, [data])

  return <div className="chart" ref={box} role="img" aria-label={label} />
}
