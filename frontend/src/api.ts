/** The studio's HTTP API (same origin, session cookie). Errors are RFC 9457 problem+json. */
import type { TimelinePage } from './timeline'
import { usageChanged } from './usage'

export class ApiError extends Error {
  constructor(readonly status: number, readonly title: string, readonly detail: string) {
    super(detail || title || `HTTP ${status}`)
  }
}

/** A readable message from any error thrown by these calls. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.detail || error.title
  if (error instanceof Error) return error.message
  return String(error)
}

export async function problemOf(response: Response): Promise<ApiError> {
  let title = response.statusText
  let detail = ''
  try {
    const body = (await response.json()) as { title?: string; detail?: string }
    title = body.title ?? title
    detail = body.detail ?? ''
  } catch {
    // not JSON (a proxy's error page): the status text says enough
  }
  return new ApiError(response.status, title, detail || `${response.status} ${title}`)
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: {} }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers = { 'Content-Type': 'application/json' }
  }
  const response = await fetch(path, init)
  if (!response.ok) throw await problemOf(response)
  if (method !== 'GET') usageChanged() // a job queued, a project or asset gone
  if (response.status === 204) return undefined as T
  return (await response.json()) as T
}

const V1 = '/api/v1'
const p = (id: string): string => `${V1}/projects/${encodeURIComponent(id)}`

export type Role = 'owner' | 'editor' | 'viewer'

export interface User {
  id: string
  username: string
  email?: string | null
  is_admin?: boolean
}

export interface ProjectSummary {
  id: string
  name: string
  role: Role
  created_at: string
  updated_at: string
}

export interface Member {
  user_id: string
  username: string | null
  role: Role
}

export interface Project {
  id: string
  name: string
  version: number
  members: Member[]
  assets: number
}

/** `GET .../collaborators`: a member with their role and whether they are online now. */
export interface Collaborator {
  user_id: string
  username: string | null
  role: Role
  online: boolean
}

/** `GET /admin/users`: an account as administrators see it. */
export interface Account {
  id: string
  username: string
  is_admin: boolean
  disabled?: boolean
  tier?: string
  created_at?: string
}

export interface Version {
  version_id: string
  position: number
  message: string
  author: string
  created_at: string
}

export interface ProjectState {
  position: number
  project: { id: string; name: string }
  scene: { objects?: Record<string, unknown>; meta?: Record<string, unknown> }
}

/** `GET .../versions/diff`: object ids added, removed, and changed (with the fields). */
export interface SceneDiff {
  from: number
  to: number
  added: string[]
  removed: string[]
  changed: Record<string, unknown>
}

export interface Generator {
  name: string
  version?: string
  available: boolean
  reason?: string | null
}

/** A material kind's defaults, as the mesh worker bakes them (`GET /api/v1/materials`). */
export interface MaterialKind {
  kind: string
  /** `#rrggbb`, sRGB. */
  color: string
  roughness: [number, number]
  metallic: number
}

export const api = {
  me: () => request<User>('GET', `${V1}/me`),
  signIn: (username: string, password: string) =>
    request<{ user: User }>('POST', `${V1}/auth/session`, { username, password }),
  signOut: () => request<void>('DELETE', `${V1}/auth/session`),

  projects: () => request<{ projects: ProjectSummary[] }>('GET', `${V1}/projects`),
  createProject: (name: string) => request<Project>('POST', `${V1}/projects`, { name }),
  project: (id: string) => request<Project>('GET', p(id)),
  renameProject: (id: string, name: string) => request<Project>('PATCH', p(id), { name }),
  invite: (id: string, who: string, role: Role) =>
    request<{ role: Role }>('POST', `${p(id)}/invite`,
      who.includes('@') ? { email: who, role } : { user: who, role }),

  generators: () => request<{ generators: Generator[] }>('GET', `${V1}/generators`),
  materials: () =>
    request<{ materials: MaterialKind[]; texture_sizes: number[] }>('GET', `${V1}/materials`),
  cancelJob: (jobId: string) =>
    request<void>('DELETE', `${V1}/jobs/${encodeURIComponent(jobId)}`),

  timeline: (id: string, after: number, limit: number) =>
    request<TimelinePage>('GET', `${p(id)}/timeline?after=${after}&limit=${limit}`),
  versions: (id: string) => request<{ versions: Version[] }>('GET', `${p(id)}/versions`),
  tagVersion: (id: string, message: string) =>
    request<Version>('POST', `${p(id)}/versions`, { message }),
  revert: (id: string, versionId: string) =>
    request<ProjectState>('POST', `${p(id)}/versions/${encodeURIComponent(versionId)}/revert`),
  diff: (id: string, from: string, to: string) =>
    request<SceneDiff>('GET', `${p(id)}/versions/diff?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`),
  stateAt: (id: string, position: number) =>
    request<ProjectState>('GET', `${p(id)}/state?at=${position}`),
  collaborators: (id: string) =>
    request<{ collaborators: Collaborator[] }>('GET', `${p(id)}/collaborators`),
  changeRole: (id: string, userId: string, role: Role) =>
    request<Member>('PATCH', `${p(id)}/collaborators/${encodeURIComponent(userId)}`, { role }),
  removeMember: (id: string, userId: string) =>
    request<void>('DELETE', `${p(id)}/collaborators/${encodeURIComponent(userId)}`),
  deleteProject: (id: string) => request<void>('DELETE', p(id)),
  users: () => request<{ users: Account[] }>('GET', `${V1}/admin/users`),
  createUser: (username: string, password: string, isAdmin: boolean) =>
    request<User>('POST', `${V1}/admin/users`, { username, password, is_admin: isAdmin }),
  setDisabled: (username: string, disabled: boolean) =>
    request<Account>('PUT', `${V1}/admin/users/${encodeURIComponent(username)}/disabled`,
      { disabled }),
  undo: (id: string) => request<{ position: number }>('POST', `${p(id)}/operations/undo`),
  redo: (id: string) => request<{ position: number }>('POST', `${p(id)}/operations/redo`),
}

/** `POST .../generate-progressive` with the image; the response body is the NDJSON stream. */
export async function startGeneration(
  projectId: string, image: File,
  params: { faceBudget?: number; seed?: number; backend?: string; heightMm?: number },
  signal?: AbortSignal,
): Promise<ReadableStream<Uint8Array>> {
  const form = new FormData()
  form.append('image', image, image.name)
  if (params.faceBudget !== undefined) form.append('face_budget', String(params.faceBudget))
  if (params.seed !== undefined) form.append('seed', String(params.seed))
  if (params.backend) form.append('backend', params.backend)
  if (params.heightMm !== undefined) form.append('height_mm', String(params.heightMm))
  const response = await fetch(`${p(projectId)}/generate-progressive`, {
    method: 'POST', body: form, credentials: 'same-origin', signal,
    headers: { Accept: 'application/x-ndjson' },
  })
  if (!response.ok) throw await problemOf(response)
  usageChanged() // the image is stored and its job counted
  if (!response.body) throw new Error('The server sent no progress stream.')
  return response.body
}
