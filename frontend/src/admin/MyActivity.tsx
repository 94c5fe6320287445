import { useState } from 'react'
import type { User } from '../api'
import { AppHeader } from '../components/AppHeader'
import { analytics, type Period } from './analyticsApi'
import { PeriodPicker } from './PeriodPicker'
import { defaultPeriod } from './shape'
import { useLoaded } from './useLoaded'
import { UserAnalyticsView } from './UserAnalyticsView'
import './admin.css'

interface Props {
  user: User
  onSignOut: () => void
}

/** `/me/activity`: a user's own figures (GET /me/analytics), for everyone. */
export default function MyActivity({ user, onSignOut }: Props) {
  const [period, setPeriod] = useState<Period>(() => defaultPeriod(new Date()))
  const loaded = useLoaded(() => analytics.mine(period), `${period.from}/${period.to}`)
  return (
    <>
      <AppHeader user={user} onSignOut={onSignOut} />
      <main className="page admin-page">
        <div className="admin-title">
          <h1>My activity</h1>
          <PeriodPicker period={period} onChange={setPeriod} withBucket={false} />
        </div>
        {loaded.state === 'loading' && <p className="muted">Loading…</p>}
        {loaded.state === 'failed' && <p className="error-text" role="alert">{loaded.error}</p>}
        {loaded.state === 'ready' && <UserAnalyticsView figures={loaded.value} />}
      </main>
    </>
  )
}
