/**
 * A live preview of a PBR material on the selected object, drawn by the browser before the
 * mesh worker bakes the real textures. It shows the kind's overall look (colour, metalness,
 * mean roughness), not its pattern: the pattern is what the bake adds. The kinds and their
 * numbers come from the API (`GET /api/v1/materials`), so preview and bake start alike.
 */

import type { MaterialKind } from './api'

export interface MaterialPreview {
  objectId: string
  /** sRGB, each channel in [0, 1]. */
  color: [number, number, number]
  metallic: number
  roughness: number
}

/** The middle of the kind's roughness range: what its pattern averages to. */
export function meanRoughness(kind: MaterialKind): number {
  return (kind.roughness[0] + kind.roughness[1]) / 2
}

/** The roughness range a bake of `kind` spans around `mean`: the kind's own range moved (its
 *  width kept, so wood still varies as wood does) and held inside [0, 1]. */
export function roughnessRange(kind: MaterialKind, mean: number): [number, number] {
  const width = kind.roughness[1] - kind.roughness[0]
  const low = Math.min(Math.max(mean - width / 2, 0), 1 - width)
  const round = (x: number) => Math.round(x * 1000) / 1000
  return [round(low), round(Math.min(1, low + width))]
}

/** The preview of `kind` in `hex` colour (`#rrggbb`) on an object, at the kind's mean
 *  roughness unless `roughness` is given. */
export function materialPreview(objectId: string, kind: MaterialKind, hex: string,
                                roughness: number = meanRoughness(kind)): MaterialPreview {
  const match = /^#([0-9a-f]{6})$/i.exec(hex)
  if (!match) throw new Error(`not a #rrggbb colour: ${hex}`)
  const n = parseInt(match[1], 16)
  return {
    objectId,
    color: [(n >> 16) / 255, ((n >> 8) & 0xff) / 255, (n & 0xff) / 255],
    metallic: kind.metallic,
    roughness,
  }
}
