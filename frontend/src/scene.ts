/**
 * The shared scene as the server's core/scene/document.py lays it out: `objects` is a Y.Map of
 * object id → Y.Map of fields. An object's placement is three keys of its map, `position`
 * [x,y,z], `rotation` (quaternion [x,y,z,w]) and `scale` [x,y,z], so that collaborators' concurrent
 * edits of different parts all survive (Yjs keeps one of two concurrent writes to a key whole);
 * scenes stored before hold them as one `transform` value, read here as if split
 * (core/scene/transform_keys.py).
 * The fields' types and limits come from `sceneSchema.json`, which the server's scene schema
 * (core/scene/scene_schema.py) generates: the server refuses edits that break it, and this
 * module reads only what conforms, since a document stored before it did may hold anything.
 */
import * as Y from 'yjs'
import { nextName } from './naming'
import sceneSchema from './sceneSchema.json'

export type Vec3 = [number, number, number]
export type Quat = [number, number, number, number]

export interface Transform {
  position: Vec3
  rotation: Quat
  scale: Vec3
}

export interface SceneObject {
  id: string
  name: string
  blob: string | null
  stage: string | null
  transform: Transform
  visible: boolean
  locked: boolean
  createdBy: string | null
  /** The job whose stage meshes show this object (its id, or `cached_from`), if any. */
  jobId: string | null
  /** The asset the object shows: a mesh (uploaded, or made by a mesh job) or, for a
   *  generated object, the image it was generated from. */
  asset: string | null
}

export const IDENTITY: Transform = {
  position: [0, 0, 0], rotation: [0, 0, 0, 1], scale: [1, 1, 1],
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function finite(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

function vector<T extends number[]>(value: unknown, fallback: T): T {
  if (Array.isArray(value) && value.length === fallback.length && value.every(finite)) {
    return [...value] as T
  }
  return [...fallback] as T
}

/** A transform from whatever the document holds; anything malformed falls back to identity. */
export function parseTransform(value: unknown): Transform {
  const t = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>
  return {
    position: vector<Vec3>(t.position, IDENTITY.position),
    rotation: vector<Quat>(t.rotation, IDENTITY.rotation),
    scale: vector<Vec3>(t.scale, IDENTITY.scale),
  }
}

/** The placement keys of an object's Y.Map, in the order the server's schema lists them. */
export const TRANSFORM_KEYS = ['position', 'rotation', 'scale'] as const
type TransformKey = (typeof TRANSFORM_KEYS)[number]
const LEGACY_TRANSFORM = 'transform'

/** An object's placement from its fields: the three keys, or for what a key lacks, the legacy
 *  `transform` value beside them; anything malformed falls back to identity. */
export function transformOfFields(fields: Record<string, unknown>): Transform {
  const legacy = fields[LEGACY_TRANSFORM]
  const old = (legacy && typeof legacy === 'object' ? legacy : {}) as Record<string, unknown>
  const part = (key: TransformKey): unknown => (key in fields ? fields[key] : old[key])
  return parseTransform({ position: part('position'), rotation: part('rotation'), scale: part('scale') })
}

/** The plain JSON values of the placement keys (the shape the server and other clients read). */
export function transformToJson(t: Transform): Record<TransformKey, number[]> {
  return { position: [...t.position], rotation: [...t.rotation], scale: [...t.scale] }
}

function sameVector(a: number[], b: number[], eps = 1e-6): boolean {
  return a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= eps)
}

export function sameTransform(a: Transform, b: Transform, eps = 1e-6): boolean {
  return TRANSFORM_KEYS.every((key) => sameVector(a[key], b[key], eps))
}

/** One object's fields, from a Y.Map (live) or a plain object (a time-travel snapshot). */
export function objectFromFields(id: string, fields: Record<string, unknown>): SceneObject {
  const cachedFrom = typeof fields.cached_from === 'string' ? fields.cached_from : null
  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null)
  return {
    id,
    name: str(fields.name) ?? id.slice(0, 8),
    blob: str(fields.blob),
    stage: str(fields.stage),
    transform: transformOfFields(fields),
    visible: fields.visible !== false,
    locked: fields.locked === true,
    createdBy: str(fields.created_by),
    jobId: cachedFrom ?? (UUID.test(id) && str(fields.stage) ? id : null),
    asset: str(fields.asset),
  }
}

type FieldSpec = { type: string | string[]; maxLength?: number }
const FIELDS = sceneSchema.properties as Record<string, FieldSpec>
const LIMITS = sceneSchema['x-limits']

/** Whether `value` is plain JSON within the scene's limits (no Yjs types, no binary). */
export function isPlain(value: unknown, depth: number = LIMITS.max_depth): boolean {
  if (value === null || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value)
  if (typeof value === 'string') return value.length <= LIMITS.max_text_chars
  if (depth <= 0 || typeof value !== 'object') return false
  if (Array.isArray(value)) {
    return value.length <= LIMITS.max_entries && value.every((v) => isPlain(v, depth - 1))
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false // Y types, Uint8Array
  const entries = Object.entries(value)
  return entries.length <= LIMITS.max_entries &&
    entries.every(([k, v]) => k.length <= LIMITS.max_key_chars && isPlain(v, depth - 1))
}

function fieldConforms(name: string, value: unknown): boolean {
  const spec = FIELDS[name]
  if (!spec) return isPlain(value)
  const types = Array.isArray(spec.type) ? spec.type : [spec.type]
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value
  if (!types.includes(type) || !isPlain(value)) return false
  return typeof value !== 'string' || value.length <= (spec.maxLength ?? Infinity)
}

/** An object's fields that conform to the scene schema, read one by one (never `toJSON`,
 *  which would convert whatever an old document holds there). */
export function fieldsOfYMap(map: Y.Map<unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {}
  map.forEach((value, name) => {
    if (name.length <= LIMITS.max_key_chars && fieldConforms(name, value)) fields[name] = value
  })
  return fields
}

export function objectFromYMap(id: string, map: Y.Map<unknown>): SceneObject {
  return objectFromFields(id, fieldsOfYMap(map))
}

export function objectsOf(doc: Y.Doc): SceneObject[] {
  const objects = doc.getMap<unknown>('objects')
  const list: SceneObject[] = []
  objects.forEach((value, id) => {
    if (value instanceof Y.Map) list.push(objectFromYMap(id, value as Y.Map<unknown>))
  })
  return list.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
}

/** Objects of a `GET .../state` snapshot: `scene.objects` is id → plain fields. */
export function objectsOfSnapshot(scene: { objects?: Record<string, unknown> }): SceneObject[] {
  return Object.entries(scene.objects ?? {})
    .filter(([, f]) => f && typeof f === 'object')
    .map(([id, f]) => objectFromFields(id, f as Record<string, unknown>))
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
}

/** The URL of an object's mesh: a generation job's current stage, or else the mesh asset it
 *  shows (uploaded or made by a mesh job), as GLB packed with EXT_meshopt_compression (the
 *  viewport carries the decoder). */
export function meshUrl(o: SceneObject): string | null {
  if (o.jobId && o.stage) {
    const stage = `/api/v1/jobs/${encodeURIComponent(o.jobId)}/stages/${encodeURIComponent(o.stage)}`
    return `${stage}.glb?encoding=meshopt`
  }
  if (o.asset && o.blob) {
    return `/api/v1/meshes/${encodeURIComponent(o.asset)}/export?format=glb&encoding=meshopt`
  }
  return null
}

/** The URL of the preview stage of a generated object showing a finer stage: the coarse mesh
 *  the viewport draws it with when it is far away (level of detail); null otherwise. */
export function farMeshUrl(o: SceneObject): string | null {
  if (!o.jobId || !o.stage || o.stage === 'preview') return null
  return `/api/v1/jobs/${encodeURIComponent(o.jobId)}/stages/preview.glb?encoding=meshopt`
}

function objectMap(doc: Y.Doc, id: string): Y.Map<unknown> | null {
  const value = doc.getMap<unknown>('objects').get(id)
  return value instanceof Y.Map ? (value as Y.Map<unknown>) : null
}

/** Writes the parts of a transform that changed into the object's Y.Map, each its own key, so
 *  that a collaborator's concurrent edit of another part survives (one transaction; nothing
 *  when nothing changed). An object still holding the legacy `transform` gets all three keys and
 *  loses it, as the server's split would do. */
export function writeTransform(doc: Y.Doc, id: string, t: Transform, origin?: unknown): boolean {
  const map = objectMap(doc, id)
  if (!map) return false
  const legacy = map.has(LEGACY_TRANSFORM)
  const now = transformOfFields(fieldsOfYMap(map))
  const json = transformToJson(t)
  const changed = TRANSFORM_KEYS.filter((key) => legacy || !map.has(key) || !sameVector(now[key], t[key]))
  if (changed.length === 0) return false
  doc.transact(() => {
    for (const key of changed) map.set(key, json[key])
    if (legacy) map.delete(LEGACY_TRANSFORM)
  }, origin)
  return true
}

/** Sets one of the boolean or text fields of an object. */
export function writeField(
  doc: Y.Doc, id: string, field: 'visible' | 'locked' | 'name', value: boolean | string,
): boolean {
  const map = objectMap(doc, id)
  if (!map || map.get(field) === value) return false
  doc.transact(() => map.set(field, value))
  return true
}

/** The names of the objects in the document, for naming a new one. */
function namesOf(doc: Y.Doc): string[] {
  return objectsOf(doc).map((o) => o.name)
}

/**
 * Adds a copy of an object under `newId`, moved by `offset` (X, Z; by default one unit along X)
 * and named with the next free number ("cube 2"). It shows the same mesh (a generated object's
 * copy points at the original job with `cached_from`), so the viewport draws both from one
 * loaded geometry. Returns false if the object is gone.
 */
export function duplicateObject(
  doc: Y.Doc, id: string, newId: string, createdBy: string, offset: [number, number] = [1, 0],
): boolean {
  const map = objectMap(doc, id)
  if (!map || objectMap(doc, newId)) return false
  const fields = fieldsOfYMap(map) // a copy of what does not conform would be refused
  const source = objectFromFields(id, fields)
  const t = source.transform
  const position: Vec3 = [t.position[0] + offset[0], t.position[1], t.position[2] + offset[1]]
  const { [LEGACY_TRANSFORM]: _legacy, ...current } = fields
  const copy: Record<string, unknown> = {
    ...current,
    name: nextName(source.name, namesOf(doc)),
    ...transformToJson({ ...t, position }),
    created_by: createdBy,
    locked: false,
  }
  if (source.jobId) copy.cached_from = source.jobId
  doc.transact(() => doc.getMap<unknown>('objects').set(newId, new Y.Map(Object.entries(copy))))
  return true
}

/** Places an uploaded mesh in the scene as a new object at `position` (the origin by default),
 *  named after its file, numbered if that name is taken ("bracket 2"). */
export function addMeshObject(
  doc: Y.Doc, id: string, mesh: { id: string; filename: string; blob_key: string },
  createdBy: string, position: Vec3 = [0, 0, 0],
): boolean {
  const objects = doc.getMap<unknown>('objects')
  if (objects.has(id)) return false
  const fields: Record<string, unknown> = {
    name: nextName(mesh.filename.replace(/\.[^.]+$/, ''), namesOf(doc)),
    asset: mesh.id,
    blob: mesh.blob_key,
    ...transformToJson({ ...IDENTITY, position }),
    material: {},
    style: '',
    visible: true,
    locked: false,
    created_by: createdBy,
  }
  doc.transact(() => objects.set(id, new Y.Map(Object.entries(fields))))
  return true
}

export interface Deletion {
  deleted: string[]
  /** Ids that were not deleted because they are locked. */
  locked: string[]
}

/** Removes objects from the scene in one transaction (one change in the log, one undo), all
 *  but the locked ones, which stay until unlocked. */
export function deleteObjects(doc: Y.Doc, ids: Iterable<string>): Deletion {
  const objects = doc.getMap<unknown>('objects')
  const result: Deletion = { deleted: [], locked: [] }
  for (const id of new Set(ids)) {
    const map = objectMap(doc, id)
    if (!map) continue
    if (map.get('locked') === true) result.locked.push(id)
    else result.deleted.push(id)
  }
  if (result.deleted.length) {
    doc.transact(() => { for (const id of result.deleted) objects.delete(id) })
  }
  return result
}

/** Euler angles in degrees (XYZ order) ↔ quaternion, for the numeric rotation fields. */
export function quatToEulerDeg([x, y, z, w]: Quat): Vec3 {
  const sinrCosp = 2 * (w * x + y * z)
  const cosrCosp = 1 - 2 * (x * x + y * y)
  const roll = Math.atan2(sinrCosp, cosrCosp)
  const sinp = 2 * (w * y - z * x)
  const pitch = Math.abs(sinp) >= 1 ? Math.sign(sinp) * (Math.PI / 2) : Math.asin(sinp)
  const sinyCosp = 2 * (w * z + x * y)
  const cosyCosp = 1 - 2 * (y * y + z * z)
  const yaw = Math.atan2(sinyCosp, cosyCosp)
  const deg = (r: number): number => Math.round((r * 180) / Math.PI * 1e4) / 1e4
  return [deg(roll), deg(pitch), deg(yaw)]
}

export function eulerDegToQuat([rx, ry, rz]: Vec3): Quat {
  const r = Math.PI / 360 // half angle, in radians per degree
  const cr = Math.cos(rx * r), sr = Math.sin(rx * r)
  const cp = Math.cos(ry * r), sp = Math.sin(ry * r)
  const cy = Math.cos(rz * r), sy = Math.sin(rz * r)
  return [
    sr * cp * cy - cr * sp * sy,
    cr * sp * cy + sr * cp * sy,
    cr * cp * sy - sr * sp * cy,
    cr * cp * cy + sr * sp * sy,
  ]
}
