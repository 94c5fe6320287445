import { useCallback, useEffect, useState, type FormEvent } from 'react'
import { api, errorMessage, request, type Account, type User } from '../api'
import { AppHeader } from './AppHeader'
import { ConfirmDialog } from './ConfirmDialog'
import { ErrorMessage } from './ErrorMessage'

interface Props {
  user: User
  onSignOut: () => void
}

const TIERS = ['free', 'pro', 'enterprise'] as const

/** `PUT /admin/users/{username}/tier`: an event in the log, applied from the answer on. */
function setTier(username: string, tier: string): Promise<Account> {
  return request<Account>('PUT', `/api/v1/admin/users/${encodeURIComponent(username)}/tier`,
    { tier })
}

/** `/admin/users`, for site administrators: every account; create one (on a tier), put one on
 * another tier, disable or enable one. */
export function UsersPage({ user, onSignOut }: Props) {
  const [users, setUsers] = useState<Account[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [done, setDone] = useState<string | null>(null)
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [isAdmin, setIsAdmin] = useState(false)
  const [tier, setNewTier] = useState<string>('free')
  const [disabling, setDisabling] = useState<Account | null>(null)

  const reload = useCallback(async () => {
    try {
      setUsers((await api.users()).users)
    } catch (e) {
      setError(errorMessage(e))
    }
  }, [])
  useEffect(() => { if (user.is_admin) void reload() }, [reload, user.is_admin])

  async function act(change: () => Promise<unknown>, said: string): Promise<void> {
    setError(null)
    setDone(null)
    try {
      await change()
      setDone(said)
    } catch (e) {
      setError(errorMessage(e))
    }
    await reload()
  }

  async function create(event: FormEvent): Promise<void> {
    event.preventDefault()
    const name = username.trim()
    await act(async () => {
      if (tier === 'free') await api.createUser(name, password, isAdmin)
      else {
        await request<User>('POST', '/api/v1/admin/users',
          { username: name, password, is_admin: isAdmin, tier })
      }
      setUsername('')  // cleared only once the account exists: a refusal keeps the input
      setPassword('')
      setIsAdmin(false)
      setNewTier('free')
    }, tier === 'free' ? `Created ${name}.` : `Created ${name} on the ${tier} tier.`)
  }

  if (!user.is_admin) {
    return (
      <>
        <AppHeader user={user} onSignOut={onSignOut} />
        <main className="page"><ErrorMessage message="Only site administrators see the users." /></main>
      </>
    )
  }
  return (
    <>
      <AppHeader user={user} onSignOut={onSignOut} />
      <main className="page">
        <h1>Users</h1>
        <form className="inline-form" onSubmit={create} aria-label="New user">
          <label className="grow">
            <span className="visually-hidden">User name</span>
            <input placeholder="User name" value={username} required maxLength={64}
              autoComplete="off"
              onChange={(e) => setUsername(e.target.value)} />
          </label>
          <label className="grow">
            <span className="visually-hidden">Password</span>
            <input type="password" placeholder="Password (8 characters or more)" value={password}
              required minLength={8} autoComplete="new-password"
              onChange={(e) => setPassword(e.target.value)} />
          </label>
          <label className="users-page-admin">
            <input type="checkbox" checked={isAdmin} onChange={(e) => setIsAdmin(e.target.checked)} />
            {' '}administrator
          </label>
          <label>
            <span className="visually-hidden">Tier of the new user</span>
            <select value={tier} onChange={(e) => setNewTier(e.target.value)}>
              {TIERS.map((t) => <option key={t} value={t}>{t}</option>)}
            </select>
          </label>
          <button type="submit" className="primary">Create user</button>
        </form>
        {error && <ErrorMessage message={error} onDismiss={() => setError(null)} />}
        {done && <p className="ok" role="status">{done}</p>}
        {users === null ? <p className="muted">Loading…</p> : (
          <table className="users-table" data-testid="users-table">
            <thead>
              <tr><th>User</th><th>Role</th><th>Tier</th><th>Status</th><th /></tr>
            </thead>
            <tbody>
              {users.map((u) => (
                <tr key={u.id} data-user={u.username} className={u.disabled ? 'disabled' : ''}>
                  <td>{u.username}{u.id === user.id && <span className="muted"> (you)</span>}</td>
                  <td>{u.is_admin ? 'administrator' : 'user'}</td>
                  <td>
                    <select aria-label={`Tier of ${u.username}`} value={u.tier ?? 'free'}
                      onChange={(e) => {
                        const next = e.target.value
                        void act(() => setTier(u.username, next),
                          `${u.username} is on the ${next} tier.`)
                      }}>
                      {TIERS.map((t) => <option key={t} value={t}>{t}</option>)}
                    </select>
                  </td>
                  <td>{u.disabled ? 'disabled' : 'active'}</td>
                  <td>
                    {u.disabled ? (
                      <button type="button" className="ghost small"
                        onClick={() => void act(() => api.setDisabled(u.username, false),
                          `${u.username} may sign in again.`)}>
                        Enable
                      </button>
                    ) : u.id !== user.id && (
                      <button type="button" className="ghost small danger-text"
                        onClick={() => setDisabling(u)}>
                        Disable
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </main>
      <ConfirmDialog open={disabling !== null} title="Disable an account" confirmLabel="Disable"
        onCancel={() => setDisabling(null)}
        onConfirm={() => {
          const u = disabling
          setDisabling(null)
          if (u) void act(() => api.setDisabled(u.username, true), `${u.username} is disabled.`)
        }}>
        <p>
          Disable <strong>{disabling?.username}</strong>? Their sign-in is refused and their
          tokens stop working until an administrator enables the account again.
        </p>
      </ConfirmDialog>
    </>
  )
}
