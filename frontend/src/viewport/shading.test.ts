import { describe, expect, it } from 'vitest'
import type { SceneObject } from '../scene'
import { fromFile, shadedFlat, type MeshOrigin } from './shading'

const meshes: Record<string, MeshOrigin> = {
  upload: { derived_from: null },
  repaired: { derived_from: { asset_id: 'upload', operation: 'repair' } },
  generated: { derived_from: { asset_id: 'image', operation: 'generate' } },
  styled: { derived_from: { asset_id: 'generated', operation: 'style' } },
}
const info = async (id: string): Promise<MeshOrigin> => meshes[id]

function object(fields: Partial<SceneObject>): SceneObject {
  return { id: 'o', name: 'o', blob: null, stage: null, createdBy: null, jobId: null,
           asset: null, visible: true, locked: false,
           transform: { position: [0, 0, 0], rotation: [0, 0, 0, 1], scale: [1, 1, 1] },
           ...fields }
}

describe('default shading', () => {
  it('follows derivations back to a file or a generation', async () => {
    expect(await fromFile('upload', info)).toBe(true)
    expect(await fromFile('repaired', info)).toBe(true)
    expect(await fromFile('generated', info)).toBe(false)
    expect(await fromFile('styled', info)).toBe(false)
  })

  it('shades an uploaded mesh flat and a generation job\'s object smooth', async () => {
    expect(await shadedFlat(object({ asset: 'repaired' }), info)).toBe(true)
    expect(await shadedFlat(object({ asset: 'styled' }), info)).toBe(false)
    expect(await shadedFlat(object({ asset: 'image', jobId: 'job' }), info)).toBe(false)
    expect(await shadedFlat(object({}), info)).toBe(false)
  })
})
