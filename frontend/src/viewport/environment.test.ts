import { describe, expect, it } from 'vitest'
import { CubeMapToSphericalPolynomialTools } from '@babylonjs/core/Misc/HighDynamicRange/cubemapToSphericalPolynomial'
import { environmentColour, environmentFaces } from './environment'

const mean = (face: Uint8Array, rows?: [number, number], size = 0): number => {
  let sum = 0
  let count = 0
  for (let at = 0; at < face.length; at += 4) {
    const row = Math.floor(at / 4 / size)
    if (rows && (row < rows[0] || row >= rows[1])) continue
    sum += face[at] + face[at + 1] + face[at + 2]
    count += 3
  }
  return sum / count
}

describe('the studio environment', () => {
  const size = 16
  const [right, left, up, down, front, back] = environmentFaces(size)

  it('is a room: ceiling and horizon light, floor dark', () => {
    expect(mean(up, undefined, size)).toBeGreaterThan(2 * mean(down, undefined, size))
    const [r, g, b] = environmentColour([0, -1, 0])
    expect(Math.max(r, g, b)).toBeLessThan(0.3)
    expect(Math.min(...environmentColour([1, 0, 0]))).toBeGreaterThan(0.6)
  })

  it('puts up at the first rows of every side face, as cube maps do', () => {
    for (const face of [right, left, front, back]) {
      expect(mean(face, [0, 2], size)).toBeGreaterThan(mean(face, [size - 2, size], size) + 50)
    }
  })

  it('lights from above in its spherical harmonics', () => {
    const polynomial = CubeMapToSphericalPolynomialTools.ConvertCubeMapToSphericalPolynomial({
      size, right, left, up, down, front, back, format: 5, type: 0, gammaSpace: true,
    })
    for (const channel of [polynomial.y.x, polynomial.y.y, polynomial.y.z]) expect(channel).toBeGreaterThan(0)
  })
})
