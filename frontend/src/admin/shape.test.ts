import { describe, expect, it } from 'vitest'
import type { Account } from '../api'
import type { Bucket, Room, UserAnalytics } from './analyticsApi'
import {
  bars, defaultPeriod, epochSeconds, errorSeries, formatBytes, formatDuration, formatRate,
  isoDay, namedRooms, responseTimeBars, seriesData, successRates, userDays, usesBars,
} from './shape'

const ZERO: Omit<Bucket, 'start'> = {
  active_users: 0, sign_ins: 0, failed_sign_ins: 0, generations: 0, generations_succeeded: 0,
  generations_failed: 0, mesh_jobs: 0, mesh_jobs_succeeded: 0, mesh_jobs_failed: 0, requests: 0,
  client_errors: 0, server_errors: 0, gpu_s: 0, cache_hits: 0, single_flight_joins: 0,
  exports: 0, projects_created: 0,
}
const bucket = (start: string, counts: Partial<Bucket> = {}): Bucket =>
  ({ ...ZERO, start, ...counts })

const DAY1 = '2026-12-01T00:00:00+00:00'
const DAY2 = '2026-12-02T00:00:00+00:00'
const DAY3 = '2026-12-03T00:00:00+00:00'

describe('periods', () => {
  it('defaults to the 30 UTC days ending today, by day', () => {
    // 00:30 in Athens is still the day before in UTC: the API's days are UTC days
    expect(defaultPeriod(new Date('2026-12-07T22:30:00Z')))
      .toEqual({ from: '2026-11-08', to: '2026-12-07', bucket: 'day' })
    expect(isoDay(new Date('2026-03-01T00:00:00+02:00'))).toBe('2026-02-28')
  })

  it('reads bucket starts with their offset as epoch seconds', () => {
    expect(epochSeconds(DAY1)).toBe(Date.UTC(2026, 11, 1) / 1000)
    expect(epochSeconds('2026-12-01T01:00:00+01:00')).toBe(Date.UTC(2026, 11, 1) / 1000)
  })
})

describe('time series', () => {
  const series = [
    bucket(DAY1, { generations: 4, generations_succeeded: 3, generations_failed: 1 }),
    bucket(DAY2),
    bucket(DAY3, { generations: 2, generations_succeeded: 2, gpu_s: 1.5 }),
  ]

  it('gives uPlot one x row and one row per counter, bucket by bucket', () => {
    expect(seriesData(series, ['generations', 'gpu_s'])).toEqual([
      [DAY1, DAY2, DAY3].map(epochSeconds), [4, 0, 2], [0, 0, 1.5],
    ])
  })

  it('appends derived rows after the counters', () => {
    const data = seriesData(series, ['generations'], [1, null, 2])
    expect(data).toHaveLength(3)
    expect(data[2]).toEqual([1, null, 2])
  })

  it('leaves a gap, not 0 %, where no job ended', () => {
    expect(successRates(series, 'generations_succeeded', 'generations_failed'))
      .toEqual([75, null, 100])
  })
})

describe('errors over time', () => {
  const series = [bucket(DAY1, { client_errors: 3, server_errors: 1 }), bucket(DAY2)]

  it('falls back to all routes 4xx and 5xx without per-route figures', () => {
    for (const byRoute of [undefined, []]) {
      expect(errorSeries(series, byRoute)).toEqual({
        labels: ['4xx', '5xx'], data: [[DAY1, DAY2].map(epochSeconds), [3, 0], [1, 0]],
      })
    }
  })

  it('draws the routes with most errors, each bucket in its column, 4xx and 5xx summed', () => {
    const shaped = errorSeries(series, [
      { start: DAY2, route: 'GET /a', client_errors: 1, server_errors: 0 },
      { start: DAY1, route: 'POST /b', client_errors: 2, server_errors: 1 },
      { start: DAY2, route: 'POST /b', client_errors: 0, server_errors: 2 },
      { start: DAY1, route: 'GET /c', client_errors: 1, server_errors: 0 },
    ], 2)
    // /b has 5; /a and /c tie on 1 and the name decides, so the chart is the same each time
    expect(shaped.labels).toEqual(['POST /b', 'GET /a'])
    expect(shaped.data.slice(1)).toEqual([[3, 2], [0, 1]])
  })
})

describe('bars', () => {
  it('puts the most used first, ties by name, at most the limit', () => {
    const shaped = usesBars([
      { name: 'shap-e', uses: 2 }, { name: 'inflate', uses: 7 }, { name: 'hunyuan3d', uses: 2 },
    ], 2)
    expect(shaped).toEqual({ labels: ['inflate', 'hunyuan3d'], data: [[0, 1], [7, 2]] })
  })

  it('numbers categories from 0 and keeps several rows side by side', () => {
    expect(bars(['a', 'b'], [1, 2], [3, null])).toEqual({
      labels: ['a', 'b'], data: [[0, 1], [1, 2], [3, null]],
    })
    expect(bars([])).toEqual({ labels: [], data: [[]] })
  })

  it('shows p50 and p95 per route group in the order given', () => {
    expect(responseTimeBars([
      { group: 'projects', requests: 30, p50_ms: 4, p95_ms: 18 },
      { group: 'ws', requests: 2, p50_ms: null, p95_ms: null },
    ])).toEqual({ labels: ['projects', 'ws'], data: [[0, 1], [4, null], [18, null]] })
  })
})

describe('formatting', () => {
  it('says a rate as a percentage with one decimal, and nothing to divide as a dash', () => {
    expect(formatRate(0.875)).toBe('87.5 %')
    expect(formatRate(2 / 3)).toBe('66.7 %')
    expect(formatRate(1)).toBe('100.0 %')
    expect(formatRate(null)).toBe('—')
  })

  it('says durations in the units people read', () => {
    expect(formatDuration(12.345)).toBe('12.3 s')
    expect(formatDuration(0)).toBe('0.0 s')
    expect(formatDuration(245)).toBe('4 min 5 s')
    expect(formatDuration(7380)).toBe('2 h 3 min')
    expect(formatDuration(null)).toBe('—')
  })

  it('says sizes in binary units', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(3482)).toBe('3.4 KiB')
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MiB')
  })
})

describe('rooms', () => {
  const room = (project_id: string, users: string[], p99: number | null): Room => ({
    project_id, peers: users.length, users, version: 1, document_bytes: 10, pending: 0,
    pending_bytes: 0, awareness_states: 0, stores_timed: p99 === null ? 0 : 5,
    store_p50_ms: p99, store_p99_ms: p99, store_max_ms: p99,
  })
  const accounts: Account[] = [
    { id: 'u1', username: 'alice', is_admin: false },
    { id: 'u2', username: 'bob', is_admin: false },
  ]

  it('names the users it knows, keeps unknown ids, and puts the slowest store first', () => {
    const shaped = namedRooms([room('p1', ['u1'], null), room('p2', ['u2', 'u9'], 12),
      room('p3', ['u1', 'u2'], 30)], accounts)
    expect(shaped.map((r) => r.project_id)).toEqual(['p3', 'p2', 'p1'])
    expect(shaped.map((r) => r.names)).toEqual([['alice', 'bob'], ['bob', 'u9'], ['alice']])
  })
})

describe('a user day by day', () => {
  it('covers every day of the period, zeros where the user did nothing', () => {
    const figures = {
      from: '2026-11-30', to: '2026-12-02',
      days: [{ day: '2026-12-01', projects_created: 1, generations: 3, generations_succeeded: 2,
        generations_failed: 1, exports: 2, active_s: 60, sign_ins: 1 }],
    } as UserAnalytics
    expect(userDays(figures)).toEqual([
      [Date.UTC(2026, 10, 30), Date.UTC(2026, 11, 1), Date.UTC(2026, 11, 2)].map((t) => t / 1000),
      [0, 3, 0], [0, 1, 0], [0, 2, 0], [0, 1, 0],
    ])
  })
})
