/** The analytics endpoints the dashboard reads (contract: README, issue 23), typed. */
import { request } from '../api'

const V1 = '/api/v1'

/** A name and how often it was used in the period (generators, styles, materials, formats). */
export interface Use {
  name: string
  uses: number
}

export interface Bucket {
  /** ISO start of the hour or day (UTC). */
  start: string
  active_users: number
  sign_ins: number
  failed_sign_ins: number
  generations: number
  generations_succeeded: number
  generations_failed: number
  mesh_jobs: number
  mesh_jobs_succeeded: number
  mesh_jobs_failed: number
  requests: number
  client_errors: number
  server_errors: number
  gpu_s: number
  cache_hits: number
  single_flight_joins: number
  exports: number
  projects_created: number
}

export interface PlatformTotals {
  generations: number
  generations_succeeded: number
  generations_failed: number
  success_rate: number | null
  mesh_jobs: number
  mesh_jobs_succeeded: number
  mesh_jobs_failed: number
  requests: number
  client_errors: number
  server_errors: number
  sign_ins: number
  failed_sign_ins: number
  exports: number
  projects_created: number
  gpu_s: number
}

export interface RouteGroupTimes {
  group: string
  requests: number
  p50_ms: number | null
  p95_ms: number | null
}

export interface RouteUsage {
  route: string
  group: string
  requests: number
  client_errors: number
  server_errors: number
}

/** One route's errors in one bucket (only where there were any). */
export interface RouteErrors {
  start: string
  route: string
  client_errors: number
  server_errors: number
}

export interface Platform {
  from: string
  to: string
  bucket: 'hour' | 'day'
  series: Bucket[]
  active_users: { daily: number; weekly: number; monthly: number; period: number }
  totals: PlatformTotals
  response_times: RouteGroupTimes[]
  routes: RouteUsage[]
  route_errors?: RouteErrors[]
  /** Device seconds the workers reported, and how many stage reports they came in. */
  gpu: {
    seconds: number
    reports: number
    by_device: { device: string; seconds: number; reports: number }[]
  }
  top_generators: Use[]
  trending_styles: (Use & { previous: number; change: number })[]
  top_materials: Use[]
  exports_by_format: Use[]
  dedup: {
    requests: number
    hits: number
    joins: number
    hit_rate: number | null
    saved_gpu_s: number
  }
  tiers: { tier: string; users: number }[]
}

export interface UserDay {
  day: string
  projects_created: number
  generations: number
  generations_succeeded: number
  generations_failed: number
  exports: number
  active_s: number
  sign_ins: number
}

export interface UserAnalytics {
  user_id: string
  username: string
  from: string
  to: string
  projects_created: number
  generations: number
  generations_succeeded: number
  generations_failed: number
  success_rate: number | null
  average_generation_s: number | null
  favourite: { generator: string | null; face_budget: number | null; style: string | null }
  generators: Use[]
  face_budgets: Use[]
  styles: Use[]
  materials: Use[]
  exports: number
  exports_by_format: Use[]
  shared_projects: number
  active_s: number
  sessions: number
  /** Failed sign-ins name nobody (what was typed may be a password): platform figures only. */
  sign_ins: number
  days: UserDay[]
}

export interface Room {
  project_id: string
  peers: number
  users: string[]
  version: number
  document_bytes: number
  pending: number
  pending_bytes: number
  awareness_states: number
  stores_timed: number
  store_p50_ms: number | null
  store_p99_ms: number | null
  store_max_ms: number | null
}

export interface QuarantinedEvent {
  model: string
  position: number
  originator_id: string
  originator_version: number
  topic: string
  error: string
  quarantined_at: string
  attempts: number
  last_tried_at: string | null
}

export interface Quarantine {
  total: number
  by_model: Record<string, number>
  events: QuarantinedEvent[]
}

/** The period a dashboard shows: UTC days, inclusive, and the series' bucket. */
export interface Period {
  from: string
  to: string
  bucket: 'hour' | 'day'
}

const days = (p: Period): string =>
  `from=${encodeURIComponent(p.from)}&to=${encodeURIComponent(p.to)}`

export const analytics = {
  platform: (p: Period) =>
    request<Platform>('GET', `${V1}/admin/analytics/platform?${days(p)}&bucket=${p.bucket}`),
  user: (username: string, p: Period) =>
    request<UserAnalytics>('GET',
      `${V1}/admin/analytics/users/${encodeURIComponent(username)}?${days(p)}`),
  mine: (p: Period) => request<UserAnalytics>('GET', `${V1}/me/analytics?${days(p)}`),
  rooms: () => request<{ node: string; rooms: Room[] }>('GET', `${V1}/admin/rooms`),
  quarantine: (limit: number) =>
    request<Quarantine>('GET', `${V1}/admin/quarantine?limit=${limit}`),
}
