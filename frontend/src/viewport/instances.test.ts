import { AssetContainer } from '@babylonjs/core/assetContainer'
import { NullEngine } from '@babylonjs/core/Engines/nullEngine'
import { Matrix, Vector3 } from '@babylonjs/core/Maths/math.vector'
import { CreateBox } from '@babylonjs/core/Meshes/Builders/boxBuilder'
import { TransformNode } from '@babylonjs/core/Meshes/transformNode'
import { Scene } from '@babylonjs/core/scene'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { InstancedModel } from './instances'

let engine: NullEngine
let scene: Scene

beforeEach(() => {
  engine = new NullEngine()
  scene = new Scene(engine)
})

afterEach(() => {
  scene.dispose()
  engine.dispose()
})

/** A loaded "GLB": a root node holding a 2-unit box placed at x = 3 inside the file. */
function container(): AssetContainer {
  const c = new AssetContainer(scene)
  const root = new TransformNode('__root__', scene)
  const box = CreateBox('box', { size: 2 }, scene)
  box.parent = root
  box.position.x = 3
  scene.removeMesh(box)
  scene.removeTransformNode(root)
  c.meshes.push(box)
  c.transformNodes.push(root)
  return c
}

function objectAt(x: number, z: number): TransformNode {
  const node = new TransformNode(`object ${x} ${z}`, scene)
  node.position.set(x, 0, z)
  return node
}

describe('InstancedModel', () => {
  it('draws each object as one matrix of one host mesh, placed as the file places it', () => {
    const model = new InstancedModel(container(), 'box')
    expect(model.meshes).toHaveLength(1)
    expect(model.triangles).toBe(12)
    model.add('a', objectAt(0, 0))
    model.add('b', objectAt(10, 5))
    expect(model.flush()).toBe(true)
    expect(model.flush()).toBe(false) // nothing changed since
    const host = model.meshes[0]
    expect(host.thinInstanceCount).toBe(2)
    expect(host.isEnabled()).toBe(true)
    const matrices = host.thinInstanceGetWorldMatrices()
    const placed = matrices.map((m: Matrix) => Vector3.TransformCoordinates(Vector3.Zero(), m))
    expect(placed.map((p) => [p.x, p.y, p.z])).toEqual([[3, 0, 0], [13, 0, 5]])
    expect([model.objectAt(0), model.objectAt(1), model.objectAt(2)]).toEqual(['a', 'b', null])
  })

  it('leaves hidden objects out and follows moves', () => {
    const model = new InstancedModel(container(), 'box')
    const a = objectAt(0, 0)
    const b = objectAt(1, 0)
    model.add('a', a)
    model.add('b', b)
    model.flush()
    a.setEnabled(false)
    b.position.z = 7
    model.touch('a')
    expect(model.flush()).toBe(true)
    const host = model.meshes[0]
    expect(host.thinInstanceCount).toBe(1)
    expect(model.objectAt(0)).toBe('b')
    const p = Vector3.TransformCoordinates(Vector3.Zero(), host.thinInstanceGetWorldMatrices()[0])
    expect([p.x, p.z]).toEqual([4, 7])
  })

  it('turns the host off with no instances left, without an empty buffer', () => {
    const model = new InstancedModel(container(), 'box')
    model.add('a', objectAt(0, 0))
    model.flush()
    model.remove('a')
    expect(() => model.flush()).not.toThrow()
    expect(model.count).toBe(0)
    expect(model.meshes[0].isEnabled()).toBe(false)
    expect(model.meshes[0].thinInstanceCount).toBe(0)
  })

  it('knows its box in its own space, for framing', () => {
    const model = new InstancedModel(container(), 'box')
    const xs = model.corners.map((c) => c.x)
    expect(Math.min(...xs)).toBeCloseTo(2)
    expect(Math.max(...xs)).toBeCloseTo(4)
    expect(model.corners).toHaveLength(8)
  })
})
