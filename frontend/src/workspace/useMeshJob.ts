/** Runs one mesh operation at a time for a panel: queue, follow, cancel, read the result. */
import { useCallback, useEffect, useRef, useState } from 'react'
import { errorMessage } from '../api'
import {
  MESH_IDLE, advanceMeshJob, followJob, meshApi, type JobRow, type MeshJobProgress,
  type MeshOperation,
} from '../meshJobs'

export interface MeshJob {
  progress: MeshJobProgress
  running: boolean
  last: JobRow | null
  run: (meshId: string, operation: MeshOperation, params: Record<string, unknown>) =>
    Promise<JobRow | null>
  cancel: () => Promise<void>
}

export function useMeshJob(): MeshJob {
  const [progress, setProgress] = useState<MeshJobProgress>(MESH_IDLE)
  const [last, setLast] = useState<JobRow | null>(null)
  const abort = useRef<AbortController | null>(null)
  const jobId = useRef<string | null>(null)

  useEffect(() => () => abort.current?.abort(), [])

  const run = useCallback(async (meshId: string, operation: MeshOperation,
                                 params: Record<string, unknown>): Promise<JobRow | null> => {
    abort.current?.abort()
    const controller = new AbortController()
    abort.current = controller
    let current: MeshJobProgress = { ...MESH_IDLE, operation, phase: 'queued', fraction: 0.05 }
    setProgress(current)
    try {
      const queued = await meshApi.queue(meshId, operation, params)
      jobId.current = queued.job_id
      current = { ...current, jobId: queued.job_id }
      setProgress(current)
      const job = await followJob(queued, (phase) => {
        current = advanceMeshJob(current, phase)
        setProgress(current)
      }, controller.signal)
      current = advanceMeshJob(current, job.state, job.error)
      setProgress(current)
      setLast(job)
      return job
    } catch (e) {
      if (!controller.signal.aborted) {
        current = { ...current, phase: 'failed', fraction: 1, error: errorMessage(e) }
        setProgress(current)
      }
      return null
    } finally {
      if (abort.current === controller) abort.current = null
    }
  }, [])

  const cancel = useCallback(async () => {
    if (!jobId.current) return
    try {
      await meshApi.cancel(jobId.current) // the stream then ends with the job cancelled
    } catch (e) {
      setProgress((p) => ({ ...p, error: errorMessage(e) }))
    }
  }, [])

  const running = progress.phase === 'queued' || progress.phase === 'started'
  return { progress, running, last, run, cancel }
}
