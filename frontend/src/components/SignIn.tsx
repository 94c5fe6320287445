import { useState, type FormEvent } from 'react'
import { api, errorMessage, type User } from '../api'
import { ErrorMessage } from './ErrorMessage'

interface Props {
  initialError: string | null
  onSignedIn: (user: User) => void
}

export function SignIn({ initialError, onSignedIn }: Props) {
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(initialError)

  async function submit(event: FormEvent): Promise<void> {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const { user } = await api.signIn(username, password)
      onSignedIn(user)
    } catch (e) {
      setError(errorMessage(e))
    } finally {
      setBusy(false)
    }
  }

  return (
    <main className="center">
      <form className="card sign-in" onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">ORFEAS Studio</h1>
        <p className="muted">Sign in to your workspace.</p>
        <label>
          User name
          <input name="username" autoComplete="username" autoFocus required value={username}
            onChange={(e) => setUsername(e.target.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required
            value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {error && <ErrorMessage message={error} />}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  )
}
