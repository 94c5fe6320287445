import { describe, expect, it } from 'vitest'
import { MATERIAL_KINDS, materialPreview } from './materialPreview'

describe('materialPreview', () => {
  it('reads the colour and takes the kind’s metalness and mean roughness', () => {
    expect(materialPreview('o', 'metal', '#ff8000')).toEqual({
      objectId: 'o', color: [1, 128 / 255, 0], metallic: 1, roughness: 0.35,
    })
    const stone = materialPreview('o', 'stone', '#000000')
    expect(stone.metallic).toBe(0)
    expect(stone.roughness).toBeCloseTo(0.85)
  })

  it('gives every kind a roughness in [0, 1]', () => {
    for (const kind of MATERIAL_KINDS) {
      const { roughness } = materialPreview('o', kind, '#123456')
      expect(roughness).toBeGreaterThanOrEqual(0)
      expect(roughness).toBeLessThanOrEqual(1)
    }
  })

  it('refuses a colour that is not #rrggbb', () => {
    expect(() => materialPreview('o', 'wood', 'red')).toThrow(/#rrggbb/)
  })
})
