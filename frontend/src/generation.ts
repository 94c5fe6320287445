/** The progress of one generation job, folded from the events of its NDJSON stream. */

import type { Generator } from './api'

export const STAGES = ['preview', 'medium', 'final'] as const
export type Stage = (typeof STAGES)[number]

export type JobEventName = 'queued' | 'started' | Stage | 'failed' | 'cancelled'

export interface JobEvent {
  event: JobEventName
  job_id: string
  position?: number
  worker?: string
  device?: string | null
  shared?: boolean
  faces?: number | null
  seconds?: number | null
  url?: string
  cached?: boolean
  reason?: string | null
}

export type JobPhase = 'idle' | 'uploading' | JobEventName

export interface JobProgress {
  jobId: string | null
  phase: JobPhase
  /** 0..1 over queued → started → preview → medium → final. */
  fraction: number
  stagesDone: Stage[]
  queuePosition: number | null
  device: string | null
  faces: number | null
  shared: boolean
  cached: boolean
  error: string | null
}

export const IDLE: JobProgress = {
  jobId: null, phase: 'idle', fraction: 0, stagesDone: [], queuePosition: null, device: null,
  faces: null, shared: false, cached: false, error: null,
}

const FRACTION: Record<string, number> = {
  uploading: 0.05, queued: 0.1, started: 0.25, preview: 0.5, medium: 0.75, final: 1,
}

const KNOWN = new Set<string>(['queued', 'started', ...STAGES, 'failed', 'cancelled'])

export function isJobEvent(value: unknown): value is JobEvent {
  if (!value || typeof value !== 'object') return false
  const v = value as Record<string, unknown>
  return typeof v.event === 'string' && KNOWN.has(v.event) && typeof v.job_id === 'string'
}

export function isFinished(p: JobProgress): boolean {
  return p.phase === 'final' || p.phase === 'failed' || p.phase === 'cancelled'
}

/** The progress after one more event; events may be skipped (a cached job starts at final). */
export function advance(p: JobProgress, e: JobEvent): JobProgress {
  const next: JobProgress = { ...p, jobId: e.job_id }
  switch (e.event) {
    case 'queued':
      next.queuePosition = e.position ?? null
      next.shared = Boolean(e.shared)
      break
    case 'started':
      next.device = e.device ?? e.worker ?? null
      next.shared = Boolean(e.shared)
      break
    case 'failed':
      return { ...next, phase: 'failed', error: e.reason || 'The generation failed.' }
    case 'cancelled':
      return { ...next, phase: 'cancelled' }
    default:
      if (!next.stagesDone.includes(e.event)) next.stagesDone = [...next.stagesDone, e.event]
      next.faces = e.faces ?? next.faces
      next.cached = Boolean(e.cached)
  }
  const fraction = FRACTION[e.event] ?? p.fraction
  if (fraction >= p.fraction) {
    next.phase = e.event
    next.fraction = fraction
  }
  return next
}

export function describeProgress(p: JobProgress): string {
  switch (p.phase) {
    case 'idle': return 'Drop an image to generate a 3D object.'
    case 'uploading': return 'Uploading the image…'
    case 'queued':
      return p.queuePosition ? `Queued, ${p.queuePosition} ahead.` : 'Queued.'
    case 'started': return `Generating${p.device ? ` on ${p.device}` : ''}…`
    case 'preview': return 'Preview ready; refining…'
    case 'medium': return 'Medium ready; finishing…'
    case 'final':
      return `Done${p.faces ? `: ${p.faces.toLocaleString('en')} faces` : ''}${p.cached ? ' (from cache)' : ''}.`
    case 'failed': return `Failed: ${p.error ?? 'unknown reason'}`
    case 'cancelled': return 'Cancelled.'
  }
}

/** What the generator menu adds to a generator that cannot run now: " (no worker)" while no
 *  GPU worker's report of it is current (the server's reason says so), else " (unavailable)"
 *  (a worker reported it and why, e.g. missing weights); nothing for one that can run. */
export function unavailableLabel(g: Generator): string {
  if (g.available) return ''
  return !g.reason || g.reason.startsWith('no GPU worker') ? ' (no worker)' : ' (unavailable)'
}
