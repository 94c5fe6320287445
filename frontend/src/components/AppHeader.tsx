import type { ReactNode } from 'react'
import type { User } from '../api'
import { navigate } from '../router'
import { UsageLine } from './UsageLine'

interface Props {
  user: User
  onSignOut: () => void
  children?: ReactNode
}

export function AppHeader({ user, onSignOut, children }: Props) {
  return (
    <header className="app-header">
      <a className="brand" href="/" onClick={(e) => { e.preventDefault(); navigate('/') }}>
        ORFEAS Studio
      </a>
      <div className="header-middle">{children}</div>
      {user.is_admin && (
        <a href="/admin" onClick={(e) => { e.preventDefault(); navigate('/admin') }}>
          Admin
        </a>
      )}
      {user.is_admin && (
        <a href="/admin/users" onClick={(e) => { e.preventDefault(); navigate('/admin/users') }}>
          Users
        </a>
      )}
      <a href="/me/activity" onClick={(e) => { e.preventDefault(); navigate('/me/activity') }}>
        My activity
      </a>
      <UsageLine />
      <span className="muted" data-testid="signed-in-as">{user.username}</span>
      <button type="button" className="ghost" onClick={onSignOut}>Sign out</button>
    </header>
  )
}
