/**
 * A live preview of a PBR material on the selected object, drawn by the browser before the
 * mesh worker bakes the real textures. It shows the kind's overall look (colour, metalness,
 * mean roughness), not its pattern: the pattern is what the bake adds.
 */

export const MATERIAL_KINDS = ['metal', 'plastic', 'wood', 'stone', 'ceramic', 'fabric'] as const
export type MaterialKind = (typeof MATERIAL_KINDS)[number]

/** Roughness ranges of each kind, as the worker's defaults (`workers/mesh/materials.py`,
 *  `_DEFAULTS`); only metal is metallic there. */
const ROUGHNESS: Record<MaterialKind, [number, number]> = {
  metal: [0.25, 0.45],
  plastic: [0.35, 0.5],
  wood: [0.55, 0.8],
  stone: [0.75, 0.95],
  ceramic: [0.05, 0.15],
  fabric: [0.8, 1.0],
}

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
  const [low, high] = ROUGHNESS[kind]
  return {
    objectId,
    color: [(n >> 16) / 255, ((n >> 8) & 0xff) / 255, (n & 0xff) / 255],
    metallic: kind === 'metal' ? 1 : 0,
    roughness: (low + high) / 2,
  }
}
