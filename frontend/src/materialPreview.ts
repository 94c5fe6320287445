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

/** The preview of `kind` in `hex` colour (`#rrggbb`) on an object. */
export function materialPreview(objectId: string, kind: MaterialKind, hex: string): MaterialPreview {
  const match = /^#([0-9a-f]{6})$/i.exec(hex)
  if (!match) throw new Error(`not a #rrggbb colour: ${hex}`)
  const n = parseInt(match[1], 16)
  const [low, high] = kind.roughness
  return {
    objectId,
    color: [(n >> 16) / 255, ((n >> 8) & 0xff) / 255, (n & 0xff) / 255],
    metallic: kind.metallic,
    roughness: (low + high) / 2,
  }
}
