import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SceneObject } from '../scene'
import { shadedFlat } from './shading'
import { upAxisOf } from './upAxis'

function object(asset: string): SceneObject {
  return { id: 'o', name: 'o', blob: null, stage: null, createdBy: null, jobId: null,
           asset, visible: true, locked: false,
           transform: { position: [0, 0, 0], rotation: [0, 0, 0, 1], scale: [1, 1, 1] } }
}

afterEach(() => { vi.unstubAllGlobals() })

describe('mesh info before the first download', () => {
  it('is asked once per asset for both the shading and the up axis, both at once', async () => {
    // Each asked on its own put two round trips in series before every first mesh.
    const asked: string[] = []
    vi.stubGlobal('fetch', (url: string) => {
      asked.push(url)
      return Promise.resolve(new Response(JSON.stringify({ filename: 'cube.stl', derived_from: null })))
    })
    const [flat, up] = await Promise.all([shadedFlat(object('cube')), upAxisOf(object('cube'))])
    expect([flat, up]).toEqual([true, 'z'])
    expect(asked).toEqual(['/api/v1/meshes/cube'])
  })

  it('asks again after a failed answer', async () => {
    const asked: string[] = []
    vi.stubGlobal('fetch', (url: string) => {
      asked.push(url)
      return Promise.resolve(asked.length === 1 ? new Response('', { status: 503 })
        : new Response(JSON.stringify({ filename: 'part.obj', derived_from: null })))
    })
    expect(await upAxisOf(object('part'))).toBe('y') // shown as stored meanwhile
    expect(await shadedFlat(object('part'))).toBe(true)
    expect(asked).toEqual(['/api/v1/meshes/part', '/api/v1/meshes/part'])
  })
})
