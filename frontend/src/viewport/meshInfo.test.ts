import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SceneObject } from '../scene'
import { shadedFlat } from './shading'
import { upAxisOf } from './upAxis'
import { meshInfo } from './meshInfo'

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

  it('is kept for the tab: a page opened again asks no more', async () => {
    const kept = new Map<string, string>()
    vi.stubGlobal('sessionStorage', {
      getItem: (k: string) => kept.get(k) ?? null,
      setItem: (k: string, v: string) => { kept.set(k, v) },
    })
    const asked: string[] = []
    vi.stubGlobal('fetch', (url: string) => {
      asked.push(url)
      return Promise.resolve(new Response(JSON.stringify(
        { filename: 'bracket.3mf', derived_from: null, size: 1234 })))
    })
    expect(await meshInfo('bracket')).toEqual({ filename: 'bracket.3mf', derived_from: null })
    expect(asked).toEqual(['/api/v1/meshes/bracket'])
    // What another page of the tab kept, for an asset this page has not asked about.
    kept.set('orfeas.meshInfo.repaired', JSON.stringify(
      { filename: 'bracket.glb', derived_from: { asset_id: 'bracket', operation: 'repair' } }))
    expect(await upAxisOf(object('repaired'))).toBe('z') // the bracket's 3MF is Z-up
    expect(asked).toEqual(['/api/v1/meshes/bracket'])
    kept.set('orfeas.meshInfo.garbled', '{"filename": 3}')
    expect(await shadedFlat(object('garbled'))).toBe(true)
    expect(asked).toEqual(['/api/v1/meshes/bracket', '/api/v1/meshes/garbled'])
  })
})
