/**
 * Mesh operations (analysis, repair, style, material, print optimiser) as jobs: queue one,
 * follow its event stream for progress, then read the finished job for its result.
 */
import { problemOf, request } from './api'
import { readNdjson } from './ndjson'
import { usageChanged } from './usage'

const V1 = '/api/v1'
const m = (id: string): string => `${V1}/meshes/${encodeURIComponent(id)}`

export type MeshOperation = 'analysis' | 'repair' | 'style' | 'material' | 'optimise'

export interface MeshInfo {
  id: string
  filename: string
  units: string
  size: number
  derived_from: { asset_id: string; job_id: string; operation: string } | null
}

export interface JobRow {
  id: string
  kind: string
  state: 'requested' | 'started' | 'succeeded' | 'failed' | 'cancelled'
  result: Record<string, unknown> | null
  error: string | null
}

export interface Queued {
  job_id: string
  job_url: string
  events_url: string
}

export type MeshJobPhase = 'idle' | 'queued' | 'started' | 'succeeded' | 'failed' | 'cancelled'

export interface MeshJobProgress {
  operation: MeshOperation | null
  jobId: string | null
  phase: MeshJobPhase
  fraction: number
  error: string | null
}

export const MESH_IDLE: MeshJobProgress = {
  operation: null, jobId: null, phase: 'idle', fraction: 0, error: null,
}

const FRACTION: Record<MeshJobPhase, number> = {
  idle: 0, queued: 0.15, started: 0.4, succeeded: 1, failed: 1, cancelled: 1,
}

/** The progress after one stream event or the job's final state; never goes backwards. */
export function advanceMeshJob(p: MeshJobProgress, phase: string,
                               error: string | null = null): MeshJobProgress {
  if (!(phase in FRACTION) || p.phase === 'succeeded' || p.phase === 'failed' ||
      p.phase === 'cancelled') return p
  const next = phase as MeshJobPhase
  if (FRACTION[next] < FRACTION[p.phase]) return p
  return { ...p, phase: next, fraction: FRACTION[next], error: error ?? p.error }
}

export function madeMesh(job: JobRow): string | null {
  const mesh = job.result?.mesh
  if (mesh && typeof mesh === 'object' && 'asset_id' in mesh) {
    return String((mesh as { asset_id: unknown }).asset_id)
  }
  return null
}

export const meshApi = {
  info: (id: string) => request<MeshInfo>('GET', m(id)),
  analysis: (id: string) => request<{ stats: Record<string, unknown> } & Record<string, unknown>>(
    'GET', `${m(id)}/analysis`),
  queue: (id: string, operation: MeshOperation, params: Record<string, unknown>) =>
    request<Queued>('POST', `${m(id)}/${operation}`, params),
  job: (jobId: string) => request<JobRow>('GET', `${V1}/jobs/${encodeURIComponent(jobId)}`),
  cancel: (jobId: string) => request<void>('DELETE', `${V1}/jobs/${encodeURIComponent(jobId)}`),
  exportUrl: (id: string, format: string) => `${m(id)}/export?format=${format}`,
  faceMapsUrl: (id: string) => `${m(id)}/analysis/faces`,
}

/** Follow a queued job's event stream to its end, reporting each phase; returns the job. */
export async function followJob(queued: Queued, onPhase: (phase: string) => void,
                                signal?: AbortSignal): Promise<JobRow> {
  const response = await fetch(queued.events_url, {
    credentials: 'same-origin', signal, headers: { Accept: 'application/x-ndjson' },
  })
  if (!response.ok) throw await problemOf(response)
  let end: string | null = null
  if (response.body) {
    for await (const value of readNdjson(response.body)) {
      const event = (value as { event?: unknown }).event
      if (typeof event !== 'string') continue
      onPhase(event)
      if (FINISHED.has(event)) end = event
    }
  }
  usageChanged() // a job slot is free again, its result stored
  // The stream ends with the job's end, as the log has it; the job's read model follows a
  // moment later, so wait for it to say the same.
  for (let tries = 0; ; tries++) {
    const job = await meshApi.job(queued.job_id)
    if (FINISHED.has(job.state) || !end || tries >= 40) return job
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled'])
