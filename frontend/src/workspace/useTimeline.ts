import { useCallback, useEffect, useRef, useState } from 'react'
import { api, errorMessage } from '../api'
import { EMPTY_TIMELINE, readForward, type TimelineState } from '../timeline'

/** The project's timeline, read forward from where it was on each refresh. */
export function useTimeline(projectId: string) {
  const [timeline, setTimeline] = useState<TimelineState>(EMPTY_TIMELINE)
  const [error, setError] = useState<string | null>(null)
  const latest = useRef(EMPTY_TIMELINE)
  const busy = useRef(false)
  const again = useRef(false)

  const refresh = useCallback(async () => {
    if (busy.current) {
      again.current = true // read once more when the running refresh ends
      return
    }
    busy.current = true
    try {
      do {
        again.current = false
        const next = await readForward(latest.current, (after, limit) =>
          api.timeline(projectId, after, limit))
        latest.current = next
        setTimeline(next)
        setError(null)
      } while (again.current)
    } catch (e) {
      setError(errorMessage(e))
    } finally {
      busy.current = false
    }
  }, [projectId])

  useEffect(() => { void refresh() }, [refresh])
  return { timeline, error, refresh }
}
