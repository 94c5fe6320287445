import { useState, type FormEvent } from 'react'
import { api, errorMessage, type ProjectSummary } from '../api'
import { navigate } from '../router'
import { ConfirmDialog } from './ConfirmDialog'
import { InviteForm } from './InviteForm'

interface Props {
  project: ProjectSummary
  onChanged: () => Promise<void>
  onError: (message: string) => void
}

export function ProjectRow({ project, onChanged, onError }: Props) {
  const [renaming, setRenaming] = useState(false)
  const [inviting, setInviting] = useState(false)
  const [name, setName] = useState(project.name)
  const [deleting, setDeleting] = useState(false)
  const href = `/projects/${project.id}`
  const canEdit = project.role !== 'viewer'

  async function rename(event: FormEvent): Promise<void> {
    event.preventDefault()
    try {
      await api.renameProject(project.id, name)
      setRenaming(false)
      await onChanged()
    } catch (e) {
      onError(errorMessage(e))
    }
  }

  async function remove(): Promise<void> {
    setDeleting(false)
    try {
      await api.deleteProject(project.id)
      await onChanged()
    } catch (e) {
      onError(errorMessage(e))
    }
  }

  return (
    <li className="project-row" data-project-id={project.id}>
      <div className="project-main">
        {renaming ? (
          <form className="inline-form grow" onSubmit={rename}>
            <label className="grow">
              <span className="visually-hidden">Project name</span>
              <input value={name} autoFocus required onChange={(e) => setName(e.target.value)} />
            </label>
            <button type="submit" className="primary small">Save</button>
            <button type="button" className="ghost small" onClick={() => setRenaming(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <a className="project-name grow" href={href}
            onClick={(e) => { e.preventDefault(); navigate(href) }}>
            {project.name}
          </a>
        )}
        <span className={`role role-${project.role}`}>{project.role}</span>
        {canEdit && !renaming && (
          <button type="button" className="ghost small" onClick={() => setRenaming(true)}>
            Rename
          </button>
        )}
        {project.role === 'owner' && (
          <button type="button" className="ghost small" aria-expanded={inviting}
            onClick={() => setInviting(!inviting)}>
            Invite
          </button>
        )}
        {project.role === 'owner' && (
          <button type="button" className="ghost small danger-text"
            onClick={() => setDeleting(true)}>
            Delete
          </button>
        )}
      </div>
      {inviting && <InviteForm projectId={project.id} onDone={() => setInviting(false)} />}
      {deleting && (
        <ConfirmDialog open title="Delete the project" confirmLabel="Delete project"
          onCancel={() => setDeleting(false)} onConfirm={() => void remove()}>
          <p>
            Delete <strong>{project.name}</strong>? It disappears for every member, with its
            scene and history.
          </p>
        </ConfirmDialog>
      )}
    </li>
  )
}
