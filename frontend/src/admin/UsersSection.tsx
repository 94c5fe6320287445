import type { Account } from '../api'
import { navigate } from '../router'

interface Props {
  users: Account[]
  chosen: string | null
  onChoose: (username: string) => void
}

/** Every account with its tier; choosing one shows that person's analytics below. Creating,
 * disabling and tiers are managed on the users page. */
export function UsersSection({ users, chosen, onChoose }: Props) {
  return (
    <section aria-labelledby="admin-users">
      <h2 id="admin-users">Users and tiers</h2>
      <p className="muted">
        {users.length} accounts.{' '}
        <a href="/admin/users" onClick={(e) => { e.preventDefault(); navigate('/admin/users') }}>
          Manage users
        </a>
      </p>
      <table className="users-table" data-testid="admin-users-table">
        <thead>
          <tr><th>User</th><th>Tier</th><th>Role</th><th>Status</th><th /></tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.id} data-user={u.username} aria-selected={u.username === chosen}>
              <td>{u.username}</td>
              <td>{u.tier ?? 'free'}</td>
              <td>{u.is_admin ? 'administrator' : 'user'}</td>
              <td>{u.disabled ? 'disabled' : 'active'}</td>
              <td>
                <button type="button" className="ghost small"
                  aria-pressed={u.username === chosen} onClick={() => onChoose(u.username)}>
                  Analytics
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}
