import type { Platform } from './analyticsApi'
import { BarChart } from './BarChart'
import { bars, responseTimeBars, usesBars } from './shape'

const ms = (v: number | null): string => (v === null ? '—' : `≤ ${v} ms`)
const signed = (v: number | null): string => (v === null ? '—' : v > 0 ? `+${v}` : String(v))

/** The period's figures by category: response times, what is used most, who is on which tier. */
export function PlatformBars({ platform }: { platform: Platform }) {
  const routes = platform.routes.slice(0, 15)
  const failing = platform.routes.filter((r) => r.client_errors + r.server_errors > 0)
    .sort((a, b) => b.client_errors + b.server_errors - a.client_errors - a.server_errors)
    .slice(0, 10)
  const styles = platform.trending_styles
  return (
    <div className="admin-grid">
      <BarChart title="Response times by route group (p50, p95)" testId="bars-response-times"
        bars={responseTimeBars(platform.response_times)} series={['p50', 'p95']} unit=" ms"
        format={ms} />
      <BarChart title="API usage by route" testId="bars-routes"
        bars={bars(routes.map((r) => r.route), routes.map((r) => r.requests))}
        series={['Requests']} />
      <BarChart title="Errors by route" testId="bars-route-errors"
        bars={bars(failing.map((r) => r.route), failing.map((r) => r.client_errors),
          failing.map((r) => r.server_errors))} series={['4xx', '5xx']} />
      <BarChart title="Top generators" testId="bars-generators"
        bars={usesBars(platform.top_generators)} series={['Uses']} />
      <BarChart title="Trending styles (change on the period before)" testId="bars-styles"
        bars={bars(styles.map((s) => s.name), styles.map((s) => s.uses),
          styles.map((s) => s.change))} series={['Uses', 'Change']} format={signed} />
      <BarChart title="Top materials" testId="bars-materials"
        bars={usesBars(platform.top_materials)} series={['Uses']} />
      <BarChart title="GPU seconds by device" testId="bars-gpu"
        bars={bars(platform.gpu.by_device.map((d) => d.device),
          platform.gpu.by_device.map((d) => d.seconds))} series={['Seconds']} />
      <BarChart title="Exports by format" testId="bars-exports"
        bars={usesBars(platform.exports_by_format)} series={['Exports']} />
      <BarChart title="Tier distribution" testId="bars-tiers"
        bars={bars(platform.tiers.map((t) => t.tier), platform.tiers.map((t) => t.users))}
        series={['Users']} />
    </div>
  )
}
