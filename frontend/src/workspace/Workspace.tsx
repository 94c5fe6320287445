import { useEffect, useMemo, useState } from 'react'
import { api, errorMessage, type Project, type User } from '../api'
import { SceneSession, colorFor } from '../collab'
import { AppHeader } from '../components/AppHeader'
import { ErrorMessage } from '../components/ErrorMessage'
import { WorkspaceView } from './WorkspaceView'

interface Props {
  projectId: string
  user: User
  onSignOut: () => void
}

/** Loads the project and opens its scene session for as long as the page shows it. */
export default function Workspace({ projectId, user, onSignOut }: Props) {
  const [project, setProject] = useState<Project | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [session, setSession] = useState<SceneSession | null>(null)
  const color = useMemo(() => colorFor(user.username), [user.username])

  useEffect(() => {
    api.project(projectId).then(setProject).catch((e: unknown) => setError(errorMessage(e)))
  }, [projectId])

  // The scene connection opens beside the project's request, not after it: its sync is the
  // longer wait before the first mesh. A project that cannot be read is refused by the scene
  // server as well (a close code, no reconnecting), and closed here once the request says so.
  const failed = error !== null
  useEffect(() => {
    if (failed) return
    const s = new SceneSession(projectId, { name: user.username, color })
    setSession(s)
    return () => {
      setSession(null)
      s.destroy()
    }
  }, [projectId, failed, user.username, color])

  if (error) {
    return (
      <>
        <AppHeader user={user} onSignOut={onSignOut} />
        <main className="page"><ErrorMessage message={error} /></main>
      </>
    )
  }
  if (!project || !session) return <main className="center muted">Opening the project…</main>
  return (
    <WorkspaceView project={project} session={session} user={user} color={color}
      onSignOut={onSignOut} />
  )
}
