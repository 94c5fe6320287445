/** Tells the header's usage line that the caller's usage may have changed (an upload, a job
 * queued or ended, a deletion), so that it reloads at once instead of at its next 30 s tick.
 * A window event keeps the callers (the API helpers, the job followers) free of any reference
 * to the component. */
export const USAGE_CHANGED = 'orfeas:usage-changed'

export function usageChanged(): void {
  window.dispatchEvent(new Event(USAGE_CHANGED))
}
