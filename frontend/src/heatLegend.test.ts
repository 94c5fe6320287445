import { describe, expect, it } from 'vitest'
import { heatLegend, overhangDegrees } from './heatLegend'

describe('heat map legend', () => {
  it('reads overhang severity as degrees from the vertical', () => {
    expect(overhangDegrees(0)).toBe(45)
    expect(overhangDegrees(1)).toBe(90)
    expect(overhangDegrees(0.5, 30)).toBe(60)
    const legend = heatLegend('overhang', new Float32Array([0, 0.5, 0.2]))
    expect(legend.unit).toBe('degrees')
    expect(legend.ticks.map((t) => [t.at, t.label])).toEqual([[0, '≤ 45°'], [1, '68°']])
  })

  it('gives wall thickness in mm with min and max ticks and the minimum wall between', () => {
    const legend = heatLegend('thickness', new Float32Array([0.4, 2.4, NaN, 1.2]), 0.8)
    expect(legend.unit).toBe('mm')
    expect(legend.unknown).toBe(1)
    expect(legend.ticks.map((t) => t.label)).toEqual(['0.4 mm', 'min wall 0.8', '2.4 mm'])
    expect(legend.ticks[1].at).toBeCloseTo(0.2, 5)
    // red at the thin end, blue at the thick end (three minimum walls and more)
    expect(legend.gradient).toMatch(/^linear-gradient\(to right, rgb\(230, 38, 26\) 0%/)
    expect(legend.gradient).toMatch(/rgb\(51, 115, 230\) 100%\)$/)
  })

  it('leaves the minimum wall out when every wall is thicker', () => {
    const legend = heatLegend('thickness', new Float32Array([1, 3]), 0.8)
    expect(legend.ticks.map((t) => t.label)).toEqual(['1 mm', '3 mm'])
  })

  it('says "or more" at the thickness the analysis caps (ten minimum walls)', () => {
    const legend = heatLegend('wall_thickness_mm', new Float32Array([8, 8]), 0.8)
    expect(legend.ticks.map((t) => t.label)).toEqual(['≥ 8 mm', '≥ 8 mm'])
  })

  it('survives a map with no known value', () => {
    const legend = heatLegend('thickness', new Float32Array([NaN]))
    expect(legend.ticks.map((t) => t.label)).toEqual(['0 mm', '0 mm'])
  })
})
