/**
 * The mesh worker's per-face maps (overhang severity, wall thickness), decoded from the
 * compact binary of workers/mesh/printability.py, and the colours of their heat maps.
 *
 * Layout (little-endian): "OFM1", uint32 face count, uint16 map count; per map a uint8 name
 * length, the UTF-8 name and a float32 scale; then each map's bytes, one per face: q in
 * 0..254 stands for q · scale, 255 for unknown.
 */

export type FaceMaps = Map<string, Float32Array>

export class FaceMapError extends Error {}

export function decodeFaceMaps(buffer: ArrayBuffer): FaceMaps {
  const view = new DataView(buffer)
  const bytes = new Uint8Array(buffer)
  if (bytes.length < 10 || String.fromCharCode(...bytes.subarray(0, 4)) !== 'OFM1') {
    throw new FaceMapError('not a face map file')
  }
  const faces = view.getUint32(4, true)
  const count = view.getUint16(8, true)
  let at = 10
  const heads: { name: string; scale: number }[] = []
  for (let i = 0; i < count; i++) {
    if (at + 1 > bytes.length) throw new FaceMapError('face maps cut short')
    const length = bytes[at]
    const name = new TextDecoder().decode(bytes.subarray(at + 1, at + 1 + length))
    at += 1 + length
    if (at + 4 > bytes.length) throw new FaceMapError('face maps cut short')
    heads.push({ name, scale: view.getFloat32(at, true) })
    at += 4
  }
  if (at + faces * count !== bytes.length) throw new FaceMapError('face maps of the wrong size')
  const maps: FaceMaps = new Map()
  for (const { name, scale } of heads) {
    const values = new Float32Array(faces)
    for (let f = 0; f < faces; f++) {
      const q = bytes[at + f]
      values[f] = q === 255 ? Number.NaN : q * scale
    }
    maps.set(name, values)
    at += faces
  }
  return maps
}

export type Rgb = [number, number, number]

const UNKNOWN: Rgb = [0.55, 0.55, 0.58]
const COOL: Rgb = [0.2, 0.45, 0.9]
const WARM: Rgb = [0.95, 0.75, 0.15]
const HOT: Rgb = [0.9, 0.15, 0.1]

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/**
 * A face's heat-map colour. Overhang: 0 (no support needed) is cool, 1 hot. Wall thickness:
 * red below `limit` (the printer's minimum wall), through yellow to blue at three times it.
 */
export function heatColour(kind: string, value: number, limit = 0.8): Rgb {
  if (!Number.isFinite(value)) return UNKNOWN
  if (kind === 'overhang') return value <= 0 ? COOL : mix(WARM, HOT, Math.min(1, value))
  if (value < limit) return HOT
  return mix(WARM, COOL, Math.min(1, (value - limit) / (2 * limit)))
}
