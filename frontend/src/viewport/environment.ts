/**
 * The light that PBR materials reflect: a small studio environment computed here rather than
 * downloaded (the studio runs offline, and an `.env` file from a CDN is one more thing to
 * fail). Without one, a metal shows only the two lights' highlights and reads as black, and a
 * baked roughness map has nothing to blur. The environment is a soft grey room: a bright
 * horizon, a cooler ceiling, a dark warm floor and one large softbox up and to the side, so
 * that shapes read by their reflections; it is low-frequency throughout, so sampling its mip
 * levels is close enough to a prefiltered map for every roughness.
 */
import { RawCubeTexture } from '@babylonjs/core/Materials/Textures/rawCubeTexture'
import { CubeMapToSphericalPolynomialTools } from '@babylonjs/core/Misc/HighDynamicRange/cubemapToSphericalPolynomial'
import type { Scene } from '@babylonjs/core/scene'

type Vec3 = [number, number, number]
type Rgb = [number, number, number]

/** Cube faces in upload order (+X, -X, +Y, -Y, +Z, -Z) as the normal and the directions of a
 *  face's columns and rows: the GL convention, which Babylon's spherical-harmonics tool uses
 *  too, so the lighting it derives and the reflections agree. */
const FACES: Array<{ normal: Vec3; column: Vec3; row: Vec3 }> = [
  { normal: [1, 0, 0], column: [0, 0, -1], row: [0, -1, 0] },
  { normal: [-1, 0, 0], column: [0, 0, 1], row: [0, -1, 0] },
  { normal: [0, 1, 0], column: [1, 0, 0], row: [0, 0, 1] },
  { normal: [0, -1, 0], column: [1, 0, 0], row: [0, 0, -1] },
  { normal: [0, 0, 1], column: [1, 0, 0], row: [0, -1, 0] },
  { normal: [0, 0, -1], column: [-1, 0, 0], row: [0, -1, 0] },
]

const HORIZON: Rgb = [0.78, 0.78, 0.76]
const CEILING: Rgb = [0.56, 0.58, 0.62]
const FLOOR: Rgb = [0.16, 0.15, 0.14]
const SOFTBOX: Vec3 = normalise([-0.55, 0.7, 0.45])
const SOFTBOX_GAIN = 0.5

function normalise([x, y, z]: Vec3): Vec3 {
  const length = Math.hypot(x, y, z)
  return [x / length, y / length, z / length]
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/** The environment's colour (sRGB, each channel in [0, 1]) seen in direction `d` (unit). */
export function environmentColour(d: Vec3): Rgb {
  const y = d[1]
  const base = y >= 0 ? mix(HORIZON, CEILING, Math.sqrt(y)) : mix(HORIZON, FLOOR, Math.min(1, -y * 4))
  const facing = d[0] * SOFTBOX[0] + d[1] * SOFTBOX[1] + d[2] * SOFTBOX[2]
  const glow = SOFTBOX_GAIN * Math.exp((facing - 1) * 12)
  return [Math.min(1, base[0] + glow), Math.min(1, base[1] + glow), Math.min(1, base[2] + glow)]
}

/** The six faces' RGBA bytes, `size` texels a side, in upload order. */
export function environmentFaces(size: number): Uint8Array[] {
  return FACES.map(({ normal, column, row }) => {
    const data = new Uint8Array(size * size * 4)
    for (let j = 0; j < size; j++) {
      const v = ((j + 0.5) / size) * 2 - 1
      for (let i = 0; i < size; i++) {
        const u = ((i + 0.5) / size) * 2 - 1
        const colour = environmentColour(normalise([
          normal[0] + u * column[0] + v * row[0],
          normal[1] + u * column[1] + v * row[1],
          normal[2] + u * column[2] + v * row[2],
        ]))
        const at = (j * size + i) * 4
        for (let c = 0; c < 3; c++) data[at + c] = Math.round(colour[c] * 255)
        data[at + 3] = 255
      }
    }
    return data
  })
}

const RGBA = 5 // Constants.TEXTUREFORMAT_RGBA
const UNSIGNED_BYTE = 0 // Constants.TEXTURETYPE_UNSIGNED_BYTE

/** The environment as the scene's `environmentTexture`, with the spherical harmonics that
 *  PBR materials take their diffuse light from computed from the same texels. */
export function studioEnvironment(scene: Scene, size = 32): RawCubeTexture {
  const faces = environmentFaces(size)
  const texture = new RawCubeTexture(scene, faces, size, RGBA, UNSIGNED_BYTE, true)
  texture.gammaSpace = true
  const [right, left, up, down, front, back] = faces
  texture.sphericalPolynomial = CubeMapToSphericalPolynomialTools.ConvertCubeMapToSphericalPolynomial({
    size, right, left, up, down, front, back, format: RGBA, type: UNSIGNED_BYTE, gammaSpace: true,
  })
  return texture
}
