import { useState } from 'react'
import { api, type User } from '../api'
import { AppHeader } from '../components/AppHeader'
import { ErrorMessage } from '../components/ErrorMessage'
import type { Period } from './analyticsApi'
import { PeriodPicker } from './PeriodPicker'
import { PlatformSection } from './PlatformSection'
import { QuarantineSection } from './QuarantineSection'
import { RoomsSection } from './RoomsSection'
import { defaultPeriod } from './shape'
import { useLoaded } from './useLoaded'
import { UserSection } from './UserSection'
import { UsersSection } from './UsersSection'
import './admin.css'

interface Props {
  user: User
  onSignOut: () => void
}

/** `/admin`: the studio's analytics for site administrators. Everyone else is told so; the
 * API refuses them too (403), so the page is a convenience, not the guard. */
export default function AdminDashboard({ user, onSignOut }: Props) {
  if (!user.is_admin) {
    return (
      <>
        <AppHeader user={user} onSignOut={onSignOut} />
        <main className="page" data-testid="admin-refused">
          <h1>Admin dashboard</h1>
          <ErrorMessage message={'Only site administrators see the dashboard. Ask one to make your '
            + 'account an administrator if you need it.'} />
        </main>
      </>
    )
  }
  return <Dashboard user={user} onSignOut={onSignOut} />
}

function Dashboard({ user, onSignOut }: Props) {
  const [period, setPeriod] = useState<Period>(() => defaultPeriod(new Date()))
  const [refresh, setRefresh] = useState(0)
  const [chosen, setChosen] = useState<string | null>(null)
  const users = useLoaded(() => api.users(), String(refresh))
  const accounts = users.state === 'ready' ? users.value.users : []
  return (
    <>
      <AppHeader user={user} onSignOut={onSignOut} />
      <main className="page admin-page">
        <div className="admin-title">
          <h1>Admin dashboard</h1>
          <PeriodPicker period={period} onChange={setPeriod} />
          <button type="button" onClick={() => setRefresh((n) => n + 1)}>Refresh</button>
        </div>
        <PlatformSection period={period} refresh={refresh} />
        {users.state === 'failed' && <p className="error-text" role="alert">{users.error}</p>}
        <UsersSection users={accounts} chosen={chosen} onChoose={setChosen} />
        {chosen && <UserSection username={chosen} period={period} refresh={refresh} />}
        <RoomsSection users={accounts} refresh={refresh} />
        <QuarantineSection refresh={refresh} />
      </main>
    </>
  )
}
