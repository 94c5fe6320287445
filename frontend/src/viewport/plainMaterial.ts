/**
 * The material of a mesh that has none. A file without a material (an STL's or an OBJ's
 * conversion, most meshes a job makes) gets the glTF loader's default: a PBR material, white,
 * fully metallic and fully rough (glTF's defaults), whose look comes mostly from the
 * environment's light. That is a PBR shader, an environment lookup, spherical harmonics and a
 * BRDF table for every pixel of every object, which a renderer on the CPU (SwiftShader) pays
 * for at each frame. Such a mesh is drawn instead with one shared Blinn-Phong material lit by
 * the scene's two lights, a light grey that reads its shape; a mesh with a material of its own
 * (a baked PBR material, a texture) keeps it, and with it the environment.
 */
import type { AssetContainer } from '@babylonjs/core/assetContainer'
import { StandardMaterial } from '@babylonjs/core/Materials/standardMaterial'
import { Color3 } from '@babylonjs/core/Maths/math.color'
import type { Scene } from '@babylonjs/core/scene'

/** The name Babylon's glTF loader gives the material of a primitive without one. */
export const LOADER_DEFAULT = '__GLTFLoader._default'

const made = new WeakMap<Scene, StandardMaterial>()

/** The scene's one material for meshes without a material of their own. */
export function plainMaterial(scene: Scene): StandardMaterial {
  let material = made.get(scene)
  if (!material || !scene.materials.includes(material)) { // none yet, or disposed
    material = new StandardMaterial('plain', scene)
    material.diffuseColor = new Color3(0.8, 0.8, 0.8)
    material.specularColor = new Color3(0.12, 0.12, 0.12)
    material.specularPower = 32
    made.set(scene, material)
  }
  return material
}

/** Whether a GLB file (its bytes) has materials. One without is loaded without them (the
 *  loader's `skipMaterials`), so that the loader makes no default PBR material, which would
 *  then be replaced at once: making one has the scene decode the PBR lookup table (a texture
 *  decoded by a shader, compiled for it) while the first mesh is being loaded. Bytes that do
 *  not read as a GLB count as having materials (the loader then decides). */
export function hasMaterials(glb: Uint8Array): boolean {
  const view = new DataView(glb.buffer, glb.byteOffset, glb.byteLength)
  const GLTF = 0x46546c67 // 'glTF'
  const JSON_CHUNK = 0x4e4f534a // 'JSON'
  if (glb.byteLength < 20 || view.getUint32(0, true) !== GLTF ||
      view.getUint32(16, true) !== JSON_CHUNK) return true
  const length = view.getUint32(12, true)
  if (20 + length > glb.byteLength) return true
  try {
    const json = JSON.parse(new TextDecoder().decode(glb.subarray(20, 20 + length))) as
      { materials?: unknown[] }
    return (json.materials?.length ?? 0) > 0
  } catch {
    return true
  }
}

/** Gives every mesh of a loaded file that has the loader's default material, or none (a file
 *  loaded without materials), the plain one; returns how many it changed. */
export function usePlainMaterial(container: AssetContainer, scene: Scene): number {
  let changed = 0
  for (const mesh of container.meshes) {
    const none = !mesh.material && mesh.getTotalVertices() > 0
    if (!none && mesh.material?.name !== LOADER_DEFAULT) continue
    mesh.material = plainMaterial(scene)
    changed += 1
  }
  return changed
}
