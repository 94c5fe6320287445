/**
 * The first meshes' files, asked for as soon as the scene is known rather than once the view
 * is made. The view (Babylon.js, a chunk of its own) is often still being evaluated and set up
 * when the scene arrives; its first download, and the description of the asset that the
 * shading and the up axis follow (`meshInfo`), then come meanwhile instead of after it. This
 * module loads no Babylon code of its own; the view takes the bytes (`takePrefetched`).
 */
import { meshUrl, type SceneObject } from '../scene'
import { shadedFlat } from './shading'
import { upAxisOf } from './upAxis'

/** How many files are asked for ahead: the view asks for the rest itself, once made. */
const AHEAD = 8

const waiting = new Map<string, Promise<Uint8Array>>()

/** A mesh file's bytes, with the page's session like the rest of the API. */
export async function download(url: string): Promise<Uint8Array> {
  const response = await fetch(url, { credentials: 'same-origin' })
  if (!response.ok) throw new Error(`${response.status} ${response.statusText} from ${url}`)
  return new Uint8Array(await response.arrayBuffer())
}

/** Starts downloading the meshes of the first few objects (and their assets' descriptions);
 *  returns how many downloads it started. */
export function prefetchMeshes(objects: readonly SceneObject[],
                               fetchBytes: (url: string) => Promise<Uint8Array> = download): number {
  let started = 0
  for (const object of objects) {
    if (waiting.size >= AHEAD) break
    const url = meshUrl(object)
    if (!url || waiting.has(url)) continue
    const bytes = fetchBytes(url)
    bytes.catch(() => {}) // reported by the view's load that takes it
    waiting.set(url, bytes)
    void shadedFlat(object)
    void upAxisOf(object)
    started += 1
  }
  return started
}

/** The download of `url` started ahead, if any; each is handed out once. */
export function takePrefetched(url: string): Promise<Uint8Array> | undefined {
  const bytes = waiting.get(url)
  waiting.delete(url)
  return bytes
}
