import { NullEngine } from '@babylonjs/core/Engines/nullEngine'
import { AssetContainer } from '@babylonjs/core/assetContainer'
import { PBRMaterial } from '@babylonjs/core/Materials/PBR/pbrMaterial'
import { StandardMaterial } from '@babylonjs/core/Materials/standardMaterial'
import { CreateBox } from '@babylonjs/core/Meshes/Builders/boxBuilder'
import { Scene } from '@babylonjs/core/scene'
import { describe, expect, it } from 'vitest'
import { LOADER_DEFAULT, plainMaterial, usePlainMaterial } from './plainMaterial'

describe('plain material', () => {
  it('replaces only the loader\'s default material, with one shared material', () => {
    const engine = new NullEngine()
    const scene = new Scene(engine)
    const container = new AssetContainer(scene)
    const plain = [CreateBox('a', {}, scene), CreateBox('b', {}, scene)]
    const baked = CreateBox('c', {}, scene)
    const fallback = new PBRMaterial(LOADER_DEFAULT, scene)
    for (const mesh of plain) mesh.material = fallback
    const metal = new PBRMaterial('steel', scene)
    metal.metallic = 1
    metal.roughness = 0.3
    baked.material = metal
    container.meshes.push(...plain, baked)

    expect(usePlainMaterial(container, scene)).toBe(2)
    expect(plain[0].material).toBeInstanceOf(StandardMaterial)
    expect(plain[1].material).toBe(plain[0].material)
    expect(plain[0].material).toBe(plainMaterial(scene))
    expect(baked.material).toBe(metal) // a material of its own keeps its PBR and environment
    expect(usePlainMaterial(container, scene)).toBe(0)
    scene.dispose()
    engine.dispose()
  })
})
