import { describe, expect, it } from 'vitest'
import { FaceMapError, decodeFaceMaps, heatColour } from './faceMaps'

/** The server's encoding (workers/mesh/printability.encode_face_maps), written out by hand. */
function encode(maps: Record<string, { scale: number; bytes: number[] }>, faces: number): ArrayBuffer {
  const parts: number[] = [...'OFM1'].map((c) => c.charCodeAt(0))
  const head = new DataView(new ArrayBuffer(6))
  head.setUint32(0, faces, true)
  head.setUint16(4, Object.keys(maps).length, true)
  parts.push(...new Uint8Array(head.buffer))
  for (const [name, { scale }] of Object.entries(maps)) {
    const scaleBytes = new DataView(new ArrayBuffer(4))
    scaleBytes.setFloat32(0, scale, true)
    parts.push(name.length, ...[...name].map((c) => c.charCodeAt(0)),
      ...new Uint8Array(scaleBytes.buffer))
  }
  for (const { bytes } of Object.values(maps)) parts.push(...bytes)
  return new Uint8Array(parts).buffer
}

describe('face maps', () => {
  it('decode values and unknowns', () => {
    const maps = decodeFaceMaps(encode({
      overhang: { scale: 1 / 254, bytes: [0, 254, 127] },
      wall_thickness_mm: { scale: 0.05, bytes: [10, 255, 40] },
    }, 3))
    expect([...maps.keys()]).toEqual(['overhang', 'wall_thickness_mm'])
    expect(maps.get('overhang')![1]).toBeCloseTo(1, 5)
    expect(maps.get('wall_thickness_mm')![0]).toBeCloseTo(0.5, 5)
    expect(Number.isNaN(maps.get('wall_thickness_mm')![1])).toBe(true)
  })

  it('refuse other files and truncated ones', () => {
    expect(() => decodeFaceMaps(new Uint8Array([1, 2, 3]).buffer)).toThrow(FaceMapError)
    const whole = new Uint8Array(encode({ overhang: { scale: 1, bytes: [1, 2] } }, 2))
    expect(() => decodeFaceMaps(whole.slice(0, whole.length - 1).buffer)).toThrow(FaceMapError)
  })

  it('colour thin walls red and thick ones blue', () => {
    expect(heatColour('wall_thickness_mm', 0.3, 0.8)).toEqual([0.9, 0.15, 0.1])
    const thick = heatColour('wall_thickness_mm', 10, 0.8)
    expect(thick[2]).toBeGreaterThan(thick[0])
    expect(heatColour('overhang', 0)[2]).toBeGreaterThan(heatColour('overhang', 1)[2])
    expect(heatColour('overhang', Number.NaN)).toEqual([0.55, 0.55, 0.58])
  })
})
