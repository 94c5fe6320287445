/** The analytics answers shaped for the charts and tables: pure, so that vitest checks them. */
import type uPlot from 'uplot'
import type { Account } from '../api'
import type {
  Bucket, Period, Room, RouteErrors, RouteGroupTimes, Use, UserAnalytics,
} from './analyticsApi'

const DAY_MS = 86_400_000

/** `YYYY-MM-DD` of a moment's UTC day. */
export function isoDay(moment: Date): string {
  return moment.toISOString().slice(0, 10)
}

/** The dashboard's first period: the 30 UTC days ending today, by day (the API's default). */
export function defaultPeriod(now: Date): Period {
  return { from: isoDay(new Date(now.getTime() - 29 * DAY_MS)), to: isoDay(now), bucket: 'day' }
}

/** uPlot's x values are seconds since the epoch. */
export function epochSeconds(iso: string): number {
  return Date.parse(iso) / 1000
}

type Counter = {
  [K in keyof Bucket]: Bucket[K] extends number ? K : never
}[keyof Bucket]

/** One x row (the buckets' starts) and one y row per counter, as uPlot takes them, then any
 * rows derived from them (a rate). */
export function seriesData(
  series: Bucket[], counters: Counter[], ...derived: (number | null)[][]
): uPlot.AlignedData {
  return [series.map((b) => epochSeconds(b.start)),
    ...counters.map((k) => series.map((b) => b[k])), ...derived]
}

/** Per bucket, the percentage of the jobs that ended which succeeded; a gap where none ended
 * (a rate of nothing is not 0 %). */
export function successRates(series: Bucket[], ok: Counter, failed: Counter): (number | null)[] {
  return series.map((b) => {
    const ended = b[ok] + b[failed]
    return ended ? Math.round((b[ok] / ended) * 1000) / 10 : null
  })
}

/** The routes with the most errors over time, one line each (4xx and 5xx together); without
 * per-route figures in the answer, the 4xx and 5xx of all routes. */
export function errorSeries(
  series: Bucket[], byRoute: RouteErrors[] | undefined, limit = 5,
): { labels: string[]; data: uPlot.AlignedData } {
  const xs = series.map((b) => epochSeconds(b.start))
  if (!byRoute || byRoute.length === 0) {
    return { labels: ['4xx', '5xx'],
      data: [xs, series.map((b) => b.client_errors), series.map((b) => b.server_errors)] }
  }
  const totals = new Map<string, number>()
  for (const e of byRoute) {
    totals.set(e.route, (totals.get(e.route) ?? 0) + e.client_errors + e.server_errors)
  }
  const routes = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, limit).map(([route]) => route)
  const column = new Map(xs.map((x, i) => [x, i]))
  const rows = routes.map(() => xs.map(() => 0))
  for (const e of byRoute) {
    const r = routes.indexOf(e.route)
    const i = column.get(epochSeconds(e.start))
    if (r >= 0 && i !== undefined) rows[r][i] += e.client_errors + e.server_errors
  }
  return { labels: routes, data: [xs, ...rows] }
}

/** A bar chart's categories: labels and one row of values per series, x being 0, 1, 2… */
export interface Bars {
  labels: string[]
  data: uPlot.AlignedData
}

/** The most used names first (the API sorts them; ties by name so the order is stable). */
export function usesBars(uses: Use[], limit = 10): Bars {
  const top = [...uses].sort((a, b) => b.uses - a.uses || (a.name < b.name ? -1 : 1))
    .slice(0, limit)
  return { labels: top.map((u) => u.name), data: [top.map((_, i) => i), top.map((u) => u.uses)] }
}

/** Any named counts as bars, in the order given. */
export function bars(labels: string[], ...rows: (number | null)[][]): Bars {
  return { labels, data: [labels.map((_, i) => i), ...rows] }
}

/** p50 and p95 per route group, the busiest first, as two bar series. */
export function responseTimeBars(times: RouteGroupTimes[]): Bars {
  return bars(times.map((t) => t.group), times.map((t) => t.p50_ms), times.map((t) => t.p95_ms))
}

/** `87.5 %`; a dash where there was nothing to divide. */
export function formatRate(rate: number | null | undefined): string {
  if (rate === null || rate === undefined) return '—'
  return `${(Math.round(rate * 1000) / 10).toFixed(1)} %`
}

/** A duration as people read it: `12.3 s`, `4 min 5 s`, `2 h 3 min`. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—'
  if (seconds < 60) return `${(Math.round(seconds * 10) / 10).toFixed(1)} s`
  const whole = Math.round(seconds)
  const h = Math.floor(whole / 3600)
  const m = Math.floor((whole % 3600) / 60)
  const s = whole % 60
  return h > 0 ? `${h} h ${m} min` : `${m} min ${s} s`
}

/** `512 B`, `3.4 KiB`, `1.2 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

/** A live room with its users named (the rooms answer has their ids), the slowest store first:
 * a stalling disk shows there before anywhere else. */
export function namedRooms(rooms: Room[], accounts: Account[]): (Room & { names: string[] })[] {
  const names = new Map(accounts.map((a) => [a.id, a.username]))
  return rooms
    .map((r) => ({ ...r, names: r.users.map((id) => names.get(id) ?? id) }))
    .sort((a, b) => (b.store_p99_ms ?? -1) - (a.store_p99_ms ?? -1)
      || (a.project_id < b.project_id ? -1 : 1))
}

/** A user's day-by-day figures over the whole period, zeros on the days without activity (the
 * API lists only active days), as x row and rows: generations, failed, exports, projects. */
export function userDays(figures: UserAnalytics): uPlot.AlignedData {
  const active = new Map(figures.days.map((d) => [d.day, d]))
  const xs: number[] = []
  const rows: number[][] = [[], [], [], []]
  const last = Date.parse(`${figures.to}T00:00:00Z`)
  for (let t = Date.parse(`${figures.from}T00:00:00Z`); t <= last; t += DAY_MS) {
    const d = active.get(isoDay(new Date(t)))
    xs.push(t / 1000)
    rows[0].push(d?.generations ?? 0)
    rows[1].push(d?.generations_failed ?? 0)
    rows[2].push(d?.exports ?? 0)
    rows[3].push(d?.projects_created ?? 0)
  }
  return [xs, ...rows]
}
