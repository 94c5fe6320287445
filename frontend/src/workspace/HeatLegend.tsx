import { useMemo } from 'react'
import { heatLegend } from '../heatLegend'
import type { HeatMap } from '../viewport/Viewport'

/** The heat map's quantity, unit and colour ramp, over the viewport's bottom-left corner. */
export function HeatLegend({ map }: { map: HeatMap }) {
  const legend = useMemo(() => heatLegend(map.kind, map.values, map.limit), [map])
  return (
    <figure className="heat-legend" data-testid="heat-legend" data-kind={map.kind}>
      <figcaption>{legend.title} ({legend.unit})</figcaption>
      <div className="heat-ramp" style={{ background: legend.gradient }} />
      <div className="heat-ticks">
        {legend.ticks.map((t) => (
          <span key={t.label} style={{ left: `${t.at * 100}%` }}
            className={`heat-tick ${t.at <= 0 ? 'start' : t.at >= 1 ? 'end' : 'mid'}`}>
            <span>{t.label}</span>
          </span>
        ))}
      </div>
      {legend.unknown > 0 && (
        <p className="muted">grey: {legend.unknown} faces not measured</p>
      )}
    </figure>
  )
}
