import { NullEngine } from '@babylonjs/core/Engines/nullEngine'
import { ShaderMaterial } from '@babylonjs/core/Materials/shaderMaterial'
import { Scene } from '@babylonjs/core/scene'
import { describe, expect, it } from 'vitest'
import { BUILD_VOLUME_MM, buildBox, drawPrintBed, restOffset } from './printBed'

describe('print bed', () => {
  it('is the default profile\'s build volume, Z up turned to the viewer\'s Y up', () => {
    expect(BUILD_VOLUME_MM).toEqual([220, 220, 250])
    expect(buildBox([200, 100, 300])).toEqual({ min: [-100, 0, -50], max: [100, 300, 50] })
  })

  it('rests a box on the plate with its footprint centred', () => {
    // a 20 mm cube exported at a slicer's bed coordinates, turned upright
    expect(restOffset([100, -5, -130], [120, 15, -110])).toEqual([-110, 5, 120])
    expect(restOffset([-0.5, -0.5, -0.5], [0.5, 0.5, 0.5])).toEqual([-0, 0.5, -0])
  })

  it('draws its plate as one cheap opaque draw: no blending, one constant colour', () => {
    // A lit, 85 % opaque plate was sorted into the transparent pass and cost a software
    // renderer most of its frame (bench.workspace: 32 ms became 140 ms at 100 objects).
    const engine = new NullEngine()
    const scene = new Scene(engine)
    drawPrintBed(scene)
    const plate = scene.getMeshByName('print-bed')
    const material = plate?.material as ShaderMaterial
    expect(plate?.getTotalIndices()).toBe(6) // two triangles
    expect(material.alpha).toBe(1)
    expect(material.needAlphaBlendingForMesh(plate!)).toBeFalsy()
    expect(plate?.hasVertexAlpha).toBe(false)
    expect(material).toBeInstanceOf(ShaderMaterial) // a constant colour: no lights, no normals
    expect(material.isFrozen).toBe(true)
    for (const mesh of scene.meshes) { // fixed: no per-frame matrix, bounds or culling
      expect(mesh.isWorldMatrixFrozen).toBe(true)
      expect(mesh.doNotSyncBoundingInfo).toBe(true)
      expect(mesh.alwaysSelectAsActiveMesh).toBe(true)
      expect(mesh.isPickable).toBe(false)
    }
    const lines = scene.getMeshByName('print-bed-lines')
    expect(lines?.hasVertexAlpha).toBe(false) // lines and edges: one opaque draw
    expect(scene.meshes.length).toBe(2)
    scene.dispose()
    engine.dispose()
  })
})
