import { useCallback, useEffect, useState, type FormEvent } from 'react'
import { api, errorMessage, type ProjectSummary, type User } from '../api'
import { AppHeader } from './AppHeader'
import { ErrorMessage } from './ErrorMessage'
import { ProjectRow } from './ProjectRow'

interface Props {
  user: User
  onSignOut: () => void
}

export function ProjectsPage({ user, onSignOut }: Props) {
  const [projects, setProjects] = useState<ProjectSummary[] | null>(null)
  const [name, setName] = useState('')
  const [error, setError] = useState<string | null>(null)

  const reload = useCallback(async () => {
    try {
      setProjects((await api.projects()).projects)
    } catch (e) {
      setError(errorMessage(e))
    }
  }, [])

  useEffect(() => { void reload() }, [reload])

  async function create(event: FormEvent): Promise<void> {
    event.preventDefault()
    setError(null)
    try {
      await api.createProject(name)
      setName('')
      await reload()
    } catch (e) {
      setError(errorMessage(e))
    }
  }

  return (
    <>
      <AppHeader user={user} onSignOut={onSignOut} />
      <main className="page">
        <h1>Projects</h1>
        <form className="inline-form" onSubmit={create}>
          <label className="grow">
            <span className="visually-hidden">New project name</span>
            <input placeholder="New project name" value={name} required maxLength={200}
              onChange={(e) => setName(e.target.value)} />
          </label>
          <button type="submit" className="primary">Create project</button>
        </form>
        {error && <ErrorMessage message={error} onDismiss={() => setError(null)} />}
        {projects === null ? (
          <p className="muted">Loading…</p>
        ) : projects.length === 0 ? (
          <p className="muted">No projects yet. Create one above, or ask a colleague to invite you.</p>
        ) : (
          <ul className="project-list">
            {projects.map((p) => (
              <ProjectRow key={p.id} project={p} onChanged={reload} onError={setError} />
            ))}
          </ul>
        )}
      </main>
    </>
  )
}
