import { Vector3 } from '@babylonjs/core/Maths/math.vector'
import { describe, expect, it } from 'vitest'
import { upAxisOfAsset, upAxisOfFilename, uprightRotation, zUpToYUp, type MeshInfo } from './upAxis'

describe('up axis by format', () => {
  it('takes STL, 3MF and OFF as Z-up and the others as Y-up', () => {
    for (const name of ['cube.stl', 'PART.STL', 'plate.3mf', 'chair.off']) {
      expect(upAxisOfFilename(name)).toBe('z')
    }
    for (const name of ['duck.glb', 'scene.gltf', 'teapot.obj', 'bunny.ply', 'noext']) {
      expect(upAxisOfFilename(name)).toBe('y')
    }
  })
})

describe('Z-up to Y-up', () => {
  it('stands a Z-up file upright: its +Z becomes the viewer\'s +Y, keeping handedness', () => {
    expect(zUpToYUp([0, 0, 1])).toEqual([0, 1, 0])
    expect(zUpToYUp([1, 0, 0])).toEqual([1, 0, 0])
    expect(zUpToYUp([0, 1, 0])).toEqual([0, 0, -1])
    const turn = uprightRotation('z')
    for (const p of [[0, 0, 1], [1, 2, 3], [-4, 5, 0.5]] as [number, number, number][]) {
      const turned = new Vector3(...p).rotateByQuaternionToRef(turn, new Vector3())
      const expected = zUpToYUp(p)
      expect(turned.x).toBeCloseTo(expected[0], 6)
      expect(turned.y).toBeCloseTo(expected[1], 6)
      expect(turned.z).toBeCloseTo(expected[2], 6)
    }
    // a right-handed basis stays right-handed: X × Y = Z after the turn too
    const [x, y] = [new Vector3(1, 0, 0), new Vector3(0, 1, 0)].map(
      (v) => v.rotateByQuaternionToRef(turn, new Vector3()))
    const z = new Vector3(0, 0, 1).rotateByQuaternionToRef(turn, new Vector3())
    expect(Vector3.Cross(x, y).subtract(z).length()).toBeLessThan(1e-6)
  })

  it('leaves a Y-up mesh as it is', () => {
    const p = new Vector3(1, 2, 3).rotateByQuaternionToRef(uprightRotation('y'), new Vector3())
    expect([p.x, p.y, p.z]).toEqual([1, 2, 3])
  })
})

describe('up axis of a mesh asset', () => {
  const assets: Record<string, MeshInfo> = {
    stl: { filename: 'cube.stl', derived_from: null },
    repaired: { filename: 'cube-repair.glb', derived_from: { asset_id: 'stl', operation: 'mesh.repair' } },
    optimised: { filename: 'cube-repair-optimise.glb',
                 derived_from: { asset_id: 'repaired', operation: 'mesh.optimise' } },
    generated: { filename: 'apple.glb', derived_from: { asset_id: 'image', operation: 'generate' } },
    obj: { filename: 'teapot.obj', derived_from: null },
  }
  const info = (id: string): Promise<MeshInfo> => Promise.resolve(assets[id])

  it('is the source file\'s through the mesh jobs that made it', async () => {
    expect(await upAxisOfAsset('stl', info)).toBe('z')
    expect(await upAxisOfAsset('optimised', info)).toBe('z')
    expect(await upAxisOfAsset('generated', info)).toBe('y')
    expect(await upAxisOfAsset('obj', info)).toBe('y')
  })
})
