import type { Period } from './analyticsApi'
import { analytics } from './analyticsApi'
import { PlatformBars } from './PlatformBars'
import { PlatformCharts } from './PlatformCharts'
import { PlatformFigures } from './PlatformFigures'
import { useLoaded } from './useLoaded'

/** The whole platform over the period: headline figures, time series, bars. */
export function PlatformSection({ period, refresh }: { period: Period; refresh: number }) {
  const loaded = useLoaded(() => analytics.platform(period),
    `${period.from}/${period.to}/${period.bucket}/${refresh}`)
  return (
    <section aria-labelledby="admin-platform" data-testid="platform"
      data-state={loaded.state}>
      <h2 id="admin-platform">Platform</h2>
      {loaded.state === 'loading' && <p className="muted">Loading…</p>}
      {loaded.state === 'failed' && <p className="error-text" role="alert">{loaded.error}</p>}
      {loaded.state === 'ready' && (
        <>
          <p className="muted">
            {loaded.value.from} to {loaded.value.to} (UTC), by {loaded.value.bucket}.
          </p>
          <PlatformFigures platform={loaded.value} />
          <PlatformCharts platform={loaded.value} />
          <PlatformBars platform={loaded.value} />
        </>
      )}
    </section>
  )
}
