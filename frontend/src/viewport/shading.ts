/**
 * How an object is shaded by default, from where its mesh came from: a mesh from a file (an
 * STL, 3MF, OBJ… made in a CAD program, or a mesh job's result from one) is shaded flat, its
 * facets being its design; a generated mesh (a sampled surface) is shaded smooth. The toolbar's
 * Flat switch shades everything flat.
 */
import type { SceneObject } from '../scene'
import { meshInfo } from './meshInfo'

export interface MeshOrigin {
  derived_from: { asset_id: string; operation: string } | null
}

type FetchOrigin = (assetId: string) => Promise<MeshOrigin>

const MAX_CHAIN = 16

/** Whether a mesh asset comes from a file (true) or, through its derivations, from a
 *  generation (false). */
export async function fromFile(assetId: string, info: FetchOrigin): Promise<boolean> {
  let id = assetId
  for (let step = 0; step < MAX_CHAIN; step++) {
    const from = (await info(id)).derived_from
    if (!from) return true
    if (from.operation === 'generate') return false
    id = from.asset_id
  }
  return false
}

const known = new Map<string, Promise<boolean>>()

/** Flat for an object showing a mesh from a file, smooth for a generated one (a generation
 *  job's object, or a mesh made from one); asked once per asset. */
export function shadedFlat(object: SceneObject,
                           info: FetchOrigin = meshInfo): Promise<boolean> {
  if (object.jobId || !object.asset) return Promise.resolve(false)
  let flat = known.get(object.asset)
  if (!flat) {
    const asset = object.asset
    flat = fromFile(asset, info).catch(() => {
      known.delete(asset) // ask again next time
      return false
    })
    known.set(asset, flat)
  }
  return flat
}
