import type { Period } from './analyticsApi'
import { analytics } from './analyticsApi'
import { UserAnalyticsView } from './UserAnalyticsView'
import { useLoaded } from './useLoaded'

/** The chosen user's analytics over the dashboard's period. */
export function UserSection({ username, period, refresh }: {
  username: string
  period: Period
  refresh: number
}) {
  const loaded = useLoaded(() => analytics.user(username, period),
    `${username}/${period.from}/${period.to}/${refresh}`)
  return (
    <section aria-labelledby="admin-user">
      <h2 id="admin-user">Analytics of {username}</h2>
      {loaded.state === 'loading' && <p className="muted">Loading…</p>}
      {loaded.state === 'failed' && <p className="error-text" role="alert">{loaded.error}</p>}
      {loaded.state === 'ready' && <UserAnalyticsView figures={loaded.value} />}
    </section>
  )
}
