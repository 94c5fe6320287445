import { NullEngine } from '@babylonjs/core/Engines/nullEngine'
import { AssetContainer } from '@babylonjs/core/assetContainer'
import { PBRMaterial } from '@babylonjs/core/Materials/PBR/pbrMaterial'
import { StandardMaterial } from '@babylonjs/core/Materials/standardMaterial'
import { CreateBox } from '@babylonjs/core/Meshes/Builders/boxBuilder'
import { Scene } from '@babylonjs/core/scene'
import { describe, expect, it } from 'vitest'
import { hasMaterials, LOADER_DEFAULT, plainMaterial, usePlainMaterial } from './plainMaterial'

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

    const loadedWithout = CreateBox('d', {}, scene) // a file loaded without its materials
    container.meshes.push(loadedWithout)
    expect(usePlainMaterial(container, scene)).toBe(1)
    expect(loadedWithout.material).toBe(plainMaterial(scene))
    scene.dispose()
    engine.dispose()
  })
})

/** A GLB of `json` (padded to four bytes) and a binary chunk of `bin` bytes. */
function glb(json: object, bin = 8): Uint8Array {
  let text = JSON.stringify(json)
  while (text.length % 4) text += ' '
  const jsonBytes = new TextEncoder().encode(text)
  const total = 12 + 8 + jsonBytes.length + 8 + bin
  const bytes = new Uint8Array(total)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, 0x46546c67, true)
  view.setUint32(4, 2, true)
  view.setUint32(8, total, true)
  view.setUint32(12, jsonBytes.length, true)
  view.setUint32(16, 0x4e4f534a, true)
  bytes.set(jsonBytes, 20)
  view.setUint32(20 + jsonBytes.length, bin, true)
  view.setUint32(24 + jsonBytes.length, 0x004e4942, true)
  return bytes
}

describe('whether a GLB has materials', () => {
  const mesh = { meshes: [{ primitives: [{ attributes: { POSITION: 0 } }] }] }

  it('reads the JSON chunk', () => {
    expect(hasMaterials(glb({ asset: { version: '2.0' }, ...mesh }))).toBe(false)
    expect(hasMaterials(glb({ asset: { version: '2.0' }, ...mesh, materials: [] }))).toBe(false)
    expect(hasMaterials(glb({ asset: { version: '2.0' }, ...mesh,
                              materials: [{ pbrMetallicRoughness: {} }] }))).toBe(true)
  })

  it('reads a GLB inside a larger buffer', () => {
    const inner = glb({ asset: { version: '2.0' }, ...mesh })
    const outer = new Uint8Array(inner.length + 16)
    outer.set(inner, 16)
    expect(hasMaterials(outer.subarray(16))).toBe(false)
  })

  it('leaves what is not a readable GLB to the loader', () => {
    expect(hasMaterials(new Uint8Array(0))).toBe(true)
    expect(hasMaterials(new TextEncoder().encode('{"asset": {"version": "2.0"}}   '))).toBe(true)
    const cut = glb({ asset: { version: '2.0' }, ...mesh })
    expect(hasMaterials(cut.subarray(0, 24))).toBe(true)
    const broken = glb({ asset: { version: '2.0' } })
    broken[20] = 0x7b + 1 // the JSON no longer parses
    expect(hasMaterials(broken)).toBe(true)
  })
})
