/** Applies suggestions as jobs: follow each job's stream, then wait for its measured effect. */
import { useCallback, useEffect, useRef, useState } from 'react'
import { errorMessage } from '../api'
import { followJob } from '../meshJobs'
import { assistantApi } from './assistantApi'
import {
  advanceRun, awaitsMeasure, inProgress, type Suggestion, type SuggestionRun,
} from './conversation'

/** The measured effect comes from the new mesh's analysis, which the studio runs by itself once
 *  the job has succeeded: a few seconds on a loaded 2-core machine; wait up to a minute. */
const MEASURE_TRIES = 120
const MEASURE_MS = 500

export interface SuggestionRuns {
  runs: Record<string, SuggestionRun>
  apply: (suggestion: Suggestion) => Promise<void>
}

export function useSuggestionRuns(projectId: string,
                                  onSuggestion: (s: Suggestion) => void): SuggestionRuns {
  const [runs, setRuns] = useState<Record<string, SuggestionRun>>({})
  const aborts = useRef(new Set<AbortController>())

  useEffect(() => {
    const pending = aborts.current
    return () => { for (const c of pending) c.abort() }
  }, [])

  const apply = useCallback(async (suggestion: Suggestion) => {
    const sid = suggestion.id
    let run: SuggestionRun = { phase: 'queued', fraction: 0.05, error: null }
    const show = (next: SuggestionRun): void => {
      run = next
      setRuns((all) => ({ ...all, [sid]: next }))
    }
    show(run)
    const controller = new AbortController()
    aborts.current.add(controller)
    try {
      const queued = await assistantApi.apply(projectId, sid)
      const job = await followJob(queued, (phase) => show(advanceRun(run, phase)),
                                  controller.signal)
      if (job.state !== 'succeeded') {
        show(advanceRun(run, job.state, job.error ?? `The job ${job.state}.`))
        onSuggestion(await assistantApi.suggestion(projectId, sid))
        return
      }
      show(advanceRun(run, 'measuring'))
      for (let i = 0; i < MEASURE_TRIES && !controller.signal.aborted; i++) {
        const now = await assistantApi.suggestion(projectId, sid)
        onSuggestion(now)
        // the suggestion's own read may lag the job's a moment: wait while it says in progress
        if (!inProgress(now) && !awaitsMeasure(now)) break
        await new Promise((resolve) => setTimeout(resolve, MEASURE_MS))
      }
      show(advanceRun(run, 'succeeded'))
    } catch (e) {
      // A refused apply (a viewer, a quota) made no job: its reason stays until the next try.
      if (!controller.signal.aborted) show({ ...run, phase: 'failed', fraction: 1, error: errorMessage(e) })
    } finally {
      aborts.current.delete(controller)
    }
  }, [projectId, onSuggestion])

  return { runs, apply }
}
