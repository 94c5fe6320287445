import { useState, type FormEvent } from 'react'
import { api, errorMessage, type Role } from '../api'
import { ErrorMessage } from './ErrorMessage'

interface Props {
  projectId: string
  /** Shows a Close button that calls it. */
  onDone?: () => void
  onInvited?: () => void
}

/** Invite by user name or email (anything with an @) with a role; re-inviting changes the role. */
export function InviteForm({ projectId, onDone, onInvited }: Props) {
  const [who, setWho] = useState('')
  const [role, setRole] = useState<Role>('editor')
  const [error, setError] = useState<string | null>(null)
  const [done, setDone] = useState<string | null>(null)

  async function submit(event: FormEvent): Promise<void> {
    event.preventDefault()
    setError(null)
    setDone(null)
    try {
      await api.invite(projectId, who.trim(), role)
      setDone(`${who.trim()} now has the ${role} role.`)
      setWho('')
      onInvited?.()
    } catch (e) {
      setError(errorMessage(e))
    }
  }

  return (
    <form className="inline-form invite" onSubmit={submit}>
      <label className="grow">
        <span className="visually-hidden">User name or email</span>
        <input placeholder="User name or email" value={who} required
          autoFocus={onDone !== undefined /* opened on request; not inside a panel */}
          onChange={(e) => setWho(e.target.value)} />
      </label>
      <label>
        <span className="visually-hidden">Role</span>
        <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
          <option value="viewer">viewer</option>
          <option value="editor">editor</option>
          <option value="owner">owner</option>
        </select>
      </label>
      <button type="submit" className="primary small">Invite</button>
      {onDone && <button type="button" className="ghost small" onClick={onDone}>Close</button>}
      {error && <ErrorMessage message={error} />}
      {done && <p className="ok" role="status">{done}</p>}
    </form>
  )
}
