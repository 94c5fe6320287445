import { useCallback, useEffect, useState } from 'react'
import { api, errorMessage, type Collaborator, type Role } from '../api'
import { ConfirmDialog } from './ConfirmDialog'
import { ErrorMessage } from './ErrorMessage'
import { InviteForm } from './InviteForm'

interface Props {
  projectId: string
  /** Only owners (and site administrators) change roles, invite and remove. */
  canManage: boolean
  selfId: string
}

const ROLES: Role[] = ['owner', 'editor', 'viewer']

/** The project's members with their roles; owners change a role, remove or invite someone. */
export function MembersPanel({ projectId, canManage, selfId }: Props) {
  const [members, setMembers] = useState<Collaborator[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [removing, setRemoving] = useState<Collaborator | null>(null)

  const reload = useCallback(async () => {
    try {
      setMembers((await api.collaborators(projectId)).collaborators)
    } catch (e) {
      setError(errorMessage(e))
    }
  }, [projectId])
  useEffect(() => { void reload() }, [reload])

  async function act(change: () => Promise<unknown>): Promise<void> {
    setError(null)
    try {
      await change()
    } catch (e) {
      setError(errorMessage(e))
    }
    await reload() // the list shows what the server holds, the refused change included
  }

  const nameOf = (m: Collaborator): string => m.username ?? m.user_id
  return (
    <section className="members" aria-label="Members" data-testid="members-panel">
      {error && <ErrorMessage message={error} onDismiss={() => setError(null)} />}
      {members === null ? <p className="muted">Loading…</p> : (
        <ul className="member-list">
          {members.map((m) => (
            <li key={m.user_id} className="member" data-member={nameOf(m)}>
              <span className={`online-dot${m.online ? ' on' : ''}`}
                title={m.online ? 'online' : 'offline'} aria-hidden="true" />
              <span className="member-name grow" title={nameOf(m)}>
                {nameOf(m)}{m.user_id === selfId && <span className="muted"> (you)</span>}
              </span>
              {canManage ? (
                <>
                  <label>
                    <span className="visually-hidden">Role of {nameOf(m)}</span>
                    <select value={m.role} data-testid={`role-${nameOf(m)}`}
                      onChange={(e) => void act(() =>
                        api.changeRole(projectId, m.user_id, e.target.value as Role))}>
                      {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
                    </select>
                  </label>
                  <button type="button" className="ghost small" aria-label={`Remove ${nameOf(m)}`}
                    onClick={() => setRemoving(m)}>Remove</button>
                </>
              ) : (
                <span className={`role role-${m.role}`}>{m.role}</span>
              )}
            </li>
          ))}
        </ul>
      )}
      {canManage && (
        <InviteForm projectId={projectId} onInvited={() => void reload()} />
      )}
      <ConfirmDialog open={removing !== null} title="Remove a member"
        confirmLabel="Remove" onCancel={() => setRemoving(null)}
        onConfirm={() => {
          const m = removing
          setRemoving(null)
          if (m) void act(() => api.removeMember(projectId, m.user_id))
        }}>
        <p>
          Remove <strong>{removing ? nameOf(removing) : ''}</strong> from the project? They lose
          access at once; invite them again to give it back.
        </p>
      </ConfirmDialog>
    </section>
  )
}
