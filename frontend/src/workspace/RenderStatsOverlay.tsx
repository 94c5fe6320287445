import type { RenderStats } from '../viewport/stats'

const number = new Intl.NumberFormat('en')

/** The viewport's statistics over its corner: what the scene costs to draw. The figures are
 *  also data attributes, which the rendering-budget tests and the benchmark read. */
export function RenderStatsOverlay({ stats }: { stats: RenderStats | null }) {
  if (!stats) {
    return <div className="render-stats" data-testid="render-stats" role="status">Measuring…</div>
  }
  return (
    <dl className="render-stats" data-testid="render-stats" role="status"
      data-objects={stats.objects} data-instanced={stats.instanced}
      data-draw-calls={stats.drawCalls} data-triangles={stats.triangles}
      data-render-ms={stats.renderMs.toFixed(2)} data-interval-ms={stats.intervalMs.toFixed(2)}
      data-last-change-drawn={Math.round(stats.lastChangeDrawn)}>
      <dt>Objects</dt><dd>{number.format(stats.objects)} ({number.format(stats.instanced)} instanced)</dd>
      <dt>Draw calls</dt><dd>{number.format(stats.drawCalls)}</dd>
      <dt>Triangles</dt><dd>{number.format(stats.triangles)}</dd>
      <dt>Frame</dt>
      <dd>{stats.intervalMs.toFixed(1)} ms ({stats.renderMs.toFixed(1)} ms drawing)</dd>
    </dl>
  )
}
