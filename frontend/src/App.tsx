import { Suspense, lazy, useCallback, useEffect, useState } from 'react'
import { ApiError, api, errorMessage, type User } from './api'
import { ErrorMessage } from './components/ErrorMessage'
import { ProjectsPage } from './components/ProjectsPage'
import { SignIn } from './components/SignIn'
import { UsersPage } from './components/UsersPage'
import { navigate, useRoute } from './router'

// The 3D workspace (Babylon.js) loads only when a project is opened.
const Workspace = lazy(() => import('./workspace/Workspace'))
// The dashboards (uPlot) load only when opened.
const AdminDashboard = lazy(() => import('./admin/AdminDashboard'))
const MyActivity = lazy(() => import('./admin/MyActivity'))

type Session = { state: 'checking' } | { state: 'signed-out' } | { state: 'signed-in'; user: User }

export function App() {
  const [session, setSession] = useState<Session>({ state: 'checking' })
  const [error, setError] = useState<string | null>(null)
  const route = useRoute()

  useEffect(() => {
    api.me()
      .then((user) => setSession({ state: 'signed-in', user }))
      .catch((e: unknown) => {
        if (!(e instanceof ApiError && e.status === 401)) setError(errorMessage(e))
        setSession({ state: 'signed-out' })
      })
  }, [])

  const signOut = useCallback(async () => {
    try {
      await api.signOut()
    } catch (e) {
      setError(errorMessage(e))
    }
    setSession({ state: 'signed-out' })
    navigate('/')
  }, [])

  if (session.state === 'checking') return <main className="center muted">Loading…</main>
  if (session.state === 'signed-out') {
    return (
      <SignIn
        initialError={error}
        onSignedIn={(user) => {
          setError(null)
          setSession({ state: 'signed-in', user })
        }}
      />
    )
  }
  return (
    <>
      {error && <ErrorMessage message={error} onDismiss={() => setError(null)} />}
      {route.page === 'workspace' ? (
        <Suspense fallback={<main className="center muted">Loading the workspace…</main>}>
          <Workspace key={route.projectId} projectId={route.projectId} user={session.user}
            onSignOut={signOut} />
        </Suspense>
      ) : route.page === 'admin-users' ? (
        <UsersPage user={session.user} onSignOut={signOut} />
      ) : route.page === 'admin' || route.page === 'my-activity' ? (
        <Suspense fallback={<main className="center muted">Loading…</main>}>
          {route.page === 'admin'
            ? <AdminDashboard user={session.user} onSignOut={signOut} />
            : <MyActivity user={session.user} onSignOut={signOut} />}
        </Suspense>
      ) : (
        <ProjectsPage user={session.user} onSignOut={signOut} />
      )}
    </>
  )
}
