import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react'
import { api, errorMessage, type SceneDiff, type Version } from '../api'
import { ErrorMessage } from '../components/ErrorMessage'
import { objectsOfSnapshot, type SceneObject } from '../scene'
import { timelineLine } from '../timeline'
import { useTimeline } from './useTimeline'

export interface Preview {
  position: number
  objects: SceneObject[]
}

interface Props {
  projectId: string
  canEdit: boolean
  names: Map<string, string>
  /** Bumped whenever the shared scene changes, to read new timeline entries. */
  changes: number
  preview: Preview | null
  onPreview: (preview: Preview | null) => void
  /** A comparison to highlight in the viewport (null clears it). */
  onDiff: (diff: SceneDiff | null) => void
}

function when(at: string): string {
  const d = new Date(at)
  return Number.isNaN(d.getTime()) ? at : d.toLocaleString()
}

export function HistoryPanel({ projectId, canEdit, names, changes, preview, onPreview,
                              onDiff }: Props) {
  const [comparing, setComparing] = useState<{ version: Version; diff: SceneDiff } | null>(null)
  const { timeline, error: timelineError, refresh } = useTimeline(projectId)
  const [versions, setVersions] = useState<Version[]>([])
  const [message, setMessage] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [index, setIndex] = useState<number | null>(null)
  const request = useRef(0)
  const events = timeline.events
  const live = events.length // the stop after the last event: now, editable

  const loadVersions = useCallback(async () => {
    try {
      setVersions((await api.versions(projectId)).versions)
    } catch (e) {
      setError(errorMessage(e))
    }
  }, [projectId])

  useEffect(() => { void loadVersions() }, [loadVersions])
  useEffect(() => { if (changes > 0) void refresh() }, [changes, refresh])

  async function show(i: number): Promise<void> {
    setIndex(i)
    const mine = ++request.current
    if (i >= live) {
      onPreview(null)
      return
    }
    try {
      const state = await api.stateAt(projectId, events[i].position)
      if (mine === request.current) {
        onPreview({ position: state.position, objects: objectsOfSnapshot(state.scene) })
      }
    } catch (e) {
      setError(errorMessage(e))
    }
  }

  async function tag(event: FormEvent): Promise<void> {
    event.preventDefault()
    try {
      await api.tagVersion(projectId, message)
      setMessage('')
      await loadVersions()
    } catch (e) {
      setError(errorMessage(e))
    }
  }

  async function revert(v: Version): Promise<void> {
    try {
      await api.revert(projectId, v.version_id)
      onPreview(null)
      setIndex(null)
      await Promise.all([loadVersions(), refresh()])
    } catch (e) {
      setError(errorMessage(e))
    }
  }

  async function compare(v: Version): Promise<void> {
    try {
      const head = events.length ? events[events.length - 1].position : v.position
      const diff = await api.diff(projectId, v.version_id, String(Math.max(head, v.position)))
      setComparing({ version: v, diff })
      onDiff(diff)
    } catch (e) {
      setError(errorMessage(e))
    }
  }

  function stopComparing(): void {
    setComparing(null)
    onDiff(null)
  }

  const sliderValue = preview ? (index ?? live) : live
  const at = sliderValue < live ? events[sliderValue] : null

  return (
    <section className="history" aria-label="History">
      <h3>Time travel</h3>
      <input type="range" min={0} max={live} step={1} value={sliderValue} disabled={!events.length}
        aria-label="Log position" data-testid="history-slider"
        aria-valuetext={at ? `position ${at.position}: ${at.summary}` : 'now'}
        onChange={(e) => void show(Number(e.target.value))} />
      <p className="small-text" role="status">
        {at ? <>Position {at.position}: {at.summary}</> : 'Now (live, editable)'}
      </p>
      {preview && (
        <button type="button" onClick={() => void show(live)}>Back to live</button>
      )}

      <h3>Versions</h3>
      {canEdit && (
        <form className="inline-form" onSubmit={tag}>
          <label className="grow">
            <span className="visually-hidden">Version message</span>
            <input placeholder="Name this version" value={message} required
              onChange={(e) => setMessage(e.target.value)} />
          </label>
          <button type="submit" className="small">Save version</button>
        </form>
      )}
      <ul className="versions">
        {versions.length === 0 && <li className="muted">No versions yet.</li>}
        {[...versions].reverse().map((v) => (
          <li key={v.version_id}>
            <span className="grow">
              <strong>{v.message}</strong>
              <span className="muted small-text"> · {names.get(v.author) ?? v.author} · position {v.position}</span>
            </span>
            <button type="button" className="small" onClick={() => void compare(v)}>
              Compare
            </button>
            {canEdit && (
              <button type="button" className="small" onClick={() => void revert(v)}>Revert</button>
            )}
          </li>
        ))}
      </ul>
      {comparing && (
        <div className="comparison" data-testid="comparison" role="status">
          <p className="small-text">
            Since “{comparing.version.message}”: {comparing.diff.added.length} added
            (green), {Object.keys(comparing.diff.changed).length} changed (amber),{' '}
            {comparing.diff.removed.length} removed.
          </p>
          <button type="button" className="small" onClick={stopComparing}>Clear comparison</button>
        </div>
      )}

      <h3>Timeline</h3>
      {(error || timelineError) && (
        <ErrorMessage message={(error ?? timelineError) as string} onDismiss={() => setError(null)} />
      )}
      <ol className="timeline" reversed>
        {[...events].reverse().slice(0, 200).map((e) => (
          <li key={e.position}>
            <span className="small-text muted">{when(e.at)}</span>
            <span>{timelineLine(e, names)}</span>
          </li>
        ))}
      </ol>
      {timeline.more && <p className="muted small-text">Not every entry is loaded yet; more load as the project changes.</p>}
    </section>
  )
}
