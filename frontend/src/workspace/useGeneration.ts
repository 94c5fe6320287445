/** Runs one generation at a time: upload, read the NDJSON stream, fold it into progress. */
import { useCallback, useEffect, useRef, useState } from 'react'
import { api, errorMessage, startGeneration } from '../api'
import { IDLE, advance, isFinished, isJobEvent, type JobProgress } from '../generation'
import { readNdjson } from '../ndjson'
import { usageChanged } from '../usage'

export interface GenerationParams {
  faceBudget?: number
  seed?: number
  backend?: string
  /** The object's height in millimetres (the server's default: 50). */
  heightMm?: number
}

export interface Generation {
  progress: JobProgress
  error: string | null
  running: boolean
  start: (image: File, params: GenerationParams) => Promise<void>
  cancel: () => Promise<void>
}

export function useGeneration(projectId: string): Generation {
  const [progress, setProgress] = useState<JobProgress>(IDLE)
  const [error, setError] = useState<string | null>(null)
  const [running, setRunning] = useState(false)
  const abort = useRef<AbortController | null>(null)
  const jobId = useRef<string | null>(null)

  useEffect(() => () => abort.current?.abort(), [])

  const start = useCallback(async (image: File, params: GenerationParams) => {
    abort.current?.abort()
    const controller = new AbortController()
    abort.current = controller
    jobId.current = null
    setError(null)
    setRunning(true)
    let current: JobProgress = { ...IDLE, phase: 'uploading', fraction: 0.05 }
    setProgress(current)
    try {
      const stream = await startGeneration(projectId, image, params, controller.signal)
      for await (const value of readNdjson(stream)) {
        if (!isJobEvent(value)) continue
        jobId.current = value.job_id
        current = advance(current, value)
        setProgress(current)
      }
      if (!isFinished(current)) setError('The progress stream ended before the job finished.')
    } catch (e) {
      if (!controller.signal.aborted) {
        setError(errorMessage(e))
        // A refused upload made no job: no progress line is left saying "uploading".
        if (jobId.current === null) setProgress(IDLE)
      }
    } finally {
      usageChanged() // the job's slot is free again (or it never took one)
      if (abort.current === controller) {
        abort.current = null
        setRunning(false)
      }
    }
  }, [projectId])

  const cancel = useCallback(async () => {
    if (!jobId.current) return // nothing to cancel until the server has named the job
    try {
      await api.cancelJob(jobId.current) // the stream then reports "cancelled" and ends
    } catch (e) {
      setError(errorMessage(e))
    }
  }, [])

  return { progress, error, running, start, cancel }
}
