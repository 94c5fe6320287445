import { describe, expect, it } from 'vitest'
import type { MaterialKind } from './api'
import { materialPreview } from './materialPreview'

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

  it('refuses a colour that is not #rrggbb', () => {
    expect(() => materialPreview('o', stone, 'red')).toThrow(/#rrggbb/)
  })
})
