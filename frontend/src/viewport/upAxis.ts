/**
 * Which way is up in a mesh file, and the turn that stands it upright in the viewer.
 *
 * The viewer's scene is Y-up (glTF's convention, and the frame generated meshes are made in).
 * STL and 3MF are Z-up by convention (a slicer's bed is XY, Z grows upwards), and so is OFF
 * (the ModelNet shapes); OBJ, glTF and PLY (the Stanford scans) are Y-up. A mesh made by a
 * mesh job from a file keeps that file's frame, so its up is its source file's.
 */
import { Quaternion } from '@babylonjs/core/Maths/math.vector'
import type { SceneObject } from '../scene'
import { meshInfo, type MeshInfo } from './meshInfo'

export type { MeshInfo }

export type UpAxis = 'y' | 'z'

const Z_UP = new Set(['stl', '3mf', 'off'])

/** The up axis of a file, by its extension. */
export function upAxisOfFilename(filename: string): UpAxis {
  const dot = filename.lastIndexOf('.')
  return dot >= 0 && Z_UP.has(filename.slice(dot + 1).toLowerCase()) ? 'z' : 'y'
}

/** A quarter turn about X, right-handed: +Z (a Z-up file's up) to +Y, +Y to -Z. */
export const Z_UP_TO_Y_UP: [number, number, number, number] = [-Math.SQRT1_2, 0, 0, Math.SQRT1_2]

export function uprightRotation(up: UpAxis): Quaternion {
  return up === 'z' ? new Quaternion(...Z_UP_TO_Y_UP) : Quaternion.Identity()
}

/** A point of a Z-up file in the viewer's Y-up frame (what `Z_UP_TO_Y_UP` does). */
export function zUpToYUp([x, y, z]: [number, number, number]): [number, number, number] {
  return [x, z, 0 - y] // 0 - y: no negative zero
}

type FetchInfo = (assetId: string) => Promise<MeshInfo>

const MAX_CHAIN = 16

/** The up axis of a mesh asset: that of the file it was made from, following what each
 *  mesh job made it from (a generated mesh's source is an image: Y-up). */
export async function upAxisOfAsset(assetId: string, info: FetchInfo): Promise<UpAxis> {
  let id = assetId
  for (let step = 0; step < MAX_CHAIN; step++) {
    const mesh = await info(id)
    const from = mesh.derived_from
    if (!from) return upAxisOfFilename(mesh.filename)
    if (from.operation === 'generate') return 'y'
    id = from.asset_id
  }
  return 'y'
}

const known = new Map<string, Promise<UpAxis>>()

/** The up axis of what an object shows: Y for a generated object, else its mesh file's
 *  (asked once per asset; a mesh the server cannot describe is shown as stored). */
export function upAxisOf(object: SceneObject): Promise<UpAxis> {
  if (object.jobId || !object.asset) return Promise.resolve('y')
  let up = known.get(object.asset)
  if (!up) {
    const asset = object.asset
    up = upAxisOfAsset(asset, meshInfo).catch(() => {
      known.delete(asset) // ask again next time
      return 'y' as const
    })
    known.set(asset, up)
  }
  return up
}
