import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SceneObject } from '../scene'
import { prefetchMeshes, takePrefetched } from './prefetch'

function object(id: string, asset: string | null): SceneObject {
  return { id, name: id, blob: asset ? `blobs/${asset}` : null, stage: null, createdBy: null,
           jobId: null, asset, visible: true, locked: false,
           transform: { position: [0, 0, 0], rotation: [0, 0, 0, 1], scale: [1, 1, 1] } }
}

const url = (asset: string): string =>
  `/api/v1/meshes/${asset}/export?format=glb&encoding=meshopt`

afterEach(() => { vi.unstubAllGlobals() })

describe('meshes asked for before the view is made', () => {
  it('asks once per mesh file, with the asset\'s description, and hands each out once', async () => {
    const described: string[] = []
    vi.stubGlobal('fetch', (asked: string) => {
      described.push(asked)
      return Promise.resolve(new Response(JSON.stringify({ filename: 'a.stl', derived_from: null })))
    })
    const downloads: string[] = []
    const bytes = (asked: string): Promise<Uint8Array> => {
      downloads.push(asked)
      return Promise.resolve(new Uint8Array([1, 2, 3]))
    }
    // Two duplicates of one mesh and an object with nothing to show.
    const objects = [object('a', 'ball'), object('b', 'ball'), object('c', null)]
    expect(prefetchMeshes(objects, bytes)).toBe(1)
    expect(prefetchMeshes(objects, bytes)).toBe(0) // already on its way
    expect(downloads).toEqual([url('ball')])
    await Promise.resolve()
    expect(described).toEqual(['/api/v1/meshes/ball'])
    expect(await takePrefetched(url('ball'))).toEqual(new Uint8Array([1, 2, 3]))
    expect(takePrefetched(url('ball'))).toBeUndefined()
    expect(takePrefetched(url('other'))).toBeUndefined()
  })

  it('asks for the first few files only', () => {
    vi.stubGlobal('fetch', () => Promise.resolve(new Response('{}', { status: 503 })))
    const objects = Array.from({ length: 20 }, (_, i) => object(`o${i}`, `mesh${i}`))
    const failing = (): Promise<Uint8Array> => Promise.reject(new Error('offline'))
    expect(prefetchMeshes(objects, failing)).toBe(8)
    for (let i = 0; i < 20; i++) takePrefetched(url(`mesh${i}`))?.catch(() => {})
  })
})
