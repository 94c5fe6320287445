import { useCallback, useEffect, useRef, useState, type DragEvent } from 'react'
import { api, type Generator } from '../api'
import { ErrorMessage } from '../components/ErrorMessage'
import { STAGES, describeProgress, unavailableLabel } from '../generation'
import { useGeneration } from './useGeneration'

interface Props {
  projectId: string
  canEdit: boolean
}

const STEPS = ['queued', 'started', ...STAGES] as const
/** A generated mesh has no size of its own: it is stored this tall unless told otherwise. */
export const DEFAULT_HEIGHT_MM = 50
const MIN_HEIGHT_MM = 1
const MAX_HEIGHT_MM = 1000
/** Workers report their generators as a heartbeat, so the menu asks again while it is open
 *  (and whenever it is about to be used): a list read once went on naming a worker long gone,
 *  or none for one that had come back. */
const GENERATORS_REFRESH_MS = 15_000

export function GenerationPanel({ projectId, canEdit }: Props) {
  const { progress, error, running, start, cancel } = useGeneration(projectId)
  const [generators, setGenerators] = useState<Generator[]>([])
  const [backend, setBackend] = useState('inflate')
  const [faceBudget, setFaceBudget] = useState('')
  const [seed, setSeed] = useState('0')
  const [height, setHeight] = useState(String(DEFAULT_HEIGHT_MM))
  const [over, setOver] = useState(false)
  const input = useRef<HTMLInputElement>(null)

  const loadGenerators = useCallback((): void => {
    api.generators().then((r) => setGenerators(r.generators)).catch(() => setGenerators([]))
  }, [])

  useEffect(() => {
    loadGenerators()
    const timer = window.setInterval(loadGenerators, GENERATORS_REFRESH_MS)
    return () => window.clearInterval(timer)
  }, [loadGenerators])

  function run(file: File | undefined): void {
    if (!file || !canEdit || running) return
    const budget = faceBudget.trim() === '' ? undefined : Number(faceBudget)
    const heightMm = height.trim() === '' ? undefined : Number(height)
    void start(file, { backend, faceBudget: budget, seed: Number(seed) || 0, heightMm })
  }

  function onDrop(e: DragEvent): void {
    e.preventDefault()
    setOver(false)
    run(e.dataTransfer.files[0])
  }

  const chosen = generators.find((g) => g.name === backend)
  const reached = (step: string): boolean =>
    progress.phase === step || progress.stagesDone.includes(step as (typeof STAGES)[number]) ||
    STEPS.indexOf(step as (typeof STEPS)[number]) < STEPS.indexOf(progress.phase as (typeof STEPS)[number])

  return (
    <section className="generation" aria-label="Generate from an image">
      {!canEdit && <p className="muted">Viewers cannot generate objects.</p>}
      <div className="field-grid">
        <label>
          Generator
          <select value={backend} disabled={!canEdit || running} onFocus={loadGenerators}
            onChange={(e) => setBackend(e.target.value)}>
            {(generators.length ? generators : [{ name: 'inflate', available: true }]).map((g) => (
              <option key={g.name} value={g.name} title={g.available ? undefined : g.reason ?? undefined}>
                {g.name}{unavailableLabel(g)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Face budget
          <input type="number" min={4} max={1000000} placeholder="default" value={faceBudget}
            disabled={!canEdit || running} onChange={(e) => setFaceBudget(e.target.value)} />
        </label>
        <label>
          Height (mm)
          <input type="number" min={MIN_HEIGHT_MM} max={MAX_HEIGHT_MM} step="any" value={height}
            placeholder={String(DEFAULT_HEIGHT_MM)} disabled={!canEdit || running}
            onChange={(e) => setHeight(e.target.value)} />
        </label>
        <label>
          Seed
          <input type="number" min={0} value={seed} disabled={!canEdit || running}
            onChange={(e) => setSeed(e.target.value)} />
        </label>
      </div>
      {chosen && !chosen.available && (
        <p className="small-text muted" role="status" data-testid="generator-note">
          {chosen.name}{unavailableLabel(chosen)}: {chosen.reason}
        </p>
      )}
      <div className={`drop-zone${over ? ' over' : ''}`} data-testid="drop-zone"
        onDragOver={(e) => { e.preventDefault(); setOver(true) }}
        onDragLeave={() => setOver(false)} onDrop={onDrop}>
        <p>Drop an image here</p>
        <button type="button" disabled={!canEdit || running} onClick={() => input.current?.click()}>
          Choose an image…
        </button>
        <input ref={input} type="file" accept="image/*" hidden data-testid="image-input"
          onChange={(e) => { run(e.target.files?.[0]); e.target.value = '' }} />
      </div>
      {progress.phase !== 'idle' && (
        <div className="job" data-testid="job-progress" data-phase={progress.phase}>
          <progress max={1} value={progress.fraction} aria-label="Generation progress" />
          <ol className="steps">
            {STEPS.map((s) => <li key={s} className={reached(s) ? 'done' : ''}>{s}</li>)}
          </ol>
          <p role="status">{describeProgress(progress)}</p>
          {running && progress.jobId && (
            <button type="button" onClick={() => void cancel()}>Cancel</button>
          )}
        </div>
      )}
      {error && <ErrorMessage message={error} />}
    </section>
  )
}
