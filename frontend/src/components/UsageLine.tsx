import { useEffect, useState } from 'react'
import { request } from '../api'
import { USAGE_CHANGED } from '../usage'

/** `GET /api/v1/me/usage`: the caller's tier, what it allows and what they have used. */
export interface Usage {
  tier: 'free' | 'pro' | 'enterprise'
  billable: { limit: number; window_s: number; used: number; remaining: number; reset_s: number }
  jobs: { running: number; limit: number }
  storage: { used_bytes: number; limit_bytes: number }
}

const REFRESH_MS = 30_000
/** After a change: reload once the burst of changes is over, and again when the read models
 * (which the figures come from) have had time to catch up with it. */
const SETTLE_MS = 300
const CATCH_UP_MS = 2_500

function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`
}

function windowName(seconds: number): string {
  if (seconds === 3600) return 'this hour'
  if (seconds % 3600 === 0) return `per ${seconds / 3600} h`
  if (seconds % 60 === 0) return `per ${seconds / 60} min`
  return `per ${seconds} s`
}

/** One line in the header: tier, billable jobs used in their window, jobs running, storage.
 * Refreshed every 30 s, when the window regains focus and after the caller's own uploads,
 * jobs and deletions (`usageChanged`); says nothing until it has loaded
 * (a refused action's own message says why and when to retry). */
export function UsageLine() {
  const [usage, setUsage] = useState<Usage | null>(null)
  useEffect(() => {
    let alive = true
    const load = () => {
      request<Usage>('GET', '/api/v1/me/usage')
        .then((u) => { if (alive) setUsage(u) })
        .catch(() => { /* a 429 or an outage: keep the last figures */ })
    }
    let settle = 0
    let catchUp = 0
    const changed = () => {
      window.clearTimeout(settle)
      window.clearTimeout(catchUp)
      settle = window.setTimeout(load, SETTLE_MS)
      catchUp = window.setTimeout(load, CATCH_UP_MS)
    }
    load()
    const timer = window.setInterval(load, REFRESH_MS)
    window.addEventListener('focus', load)
    window.addEventListener(USAGE_CHANGED, changed)
    return () => {
      alive = false
      window.clearInterval(timer)
      window.clearTimeout(settle)
      window.clearTimeout(catchUp)
      window.removeEventListener('focus', load)
      window.removeEventListener(USAGE_CHANGED, changed)
    }
  }, [])
  if (usage === null) return null
  const { billable, jobs, storage } = usage
  const full = billable.remaining === 0
  return (
    <span className="muted usage-line" data-testid="usage-line"
          title={full ? `the next job is allowed in about ${billable.reset_s} s` : undefined}>
      {usage.tier} · jobs {billable.used}/{billable.limit} {windowName(billable.window_s)}
      {' '}· running {jobs.running}/{jobs.limit}
      {' '}· storage {bytes(storage.used_bytes)} of {bytes(storage.limit_bytes)}
    </span>
  )
}
