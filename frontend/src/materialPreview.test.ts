import { describe, expect, it } from 'vitest'
import type { MaterialKind } from './api'
import { materialPreview, meanRoughness, roughnessRange } from './materialPreview'

const metal: MaterialKind = { kind: 'metal', color: '#b8babf', roughness: [0.25, 0.45], metallic: 1 }
const stone: MaterialKind = { kind: 'stone', color: '#8a857d', roughness: [0.75, 0.95], metallic: 0 }

describe('materialPreview', () => {
  it('reads the colour and takes the kind’s metalness and mean roughness', () => {
    expect(materialPreview('o', metal, '#ff8000')).toEqual({
      objectId: 'o', color: [1, 128 / 255, 0], metallic: 1, roughness: 0.35,
    })
    const preview = materialPreview('o', stone, '#000000')
    expect(preview.metallic).toBe(0)
    expect(preview.roughness).toBeCloseTo(0.85)
  })

  it('previews a chosen roughness', () => {
    expect(materialPreview('o', stone, '#000000', 0.3).roughness).toBe(0.3)
  })

  it('moves the kind’s roughness range to a new middle, keeping its width inside [0, 1]', () => {
    expect(roughnessRange(metal, meanRoughness(metal))).toEqual([0.25, 0.45])
    expect(roughnessRange(metal, 0.6)).toEqual([0.5, 0.7])
    expect(roughnessRange(stone, 1)).toEqual([0.8, 1])
    expect(roughnessRange(stone, 0)).toEqual([0, 0.2])
  })

  it('refuses a colour that is not #rrggbb', () => {
    expect(() => materialPreview('o', stone, 'red')).toThrow(/#rrggbb/)
  })
})
