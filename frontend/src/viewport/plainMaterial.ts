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

/** Gives every mesh of a loaded file that has the loader's default material the plain one;
 *  returns how many it changed. */
export function usePlainMaterial(container: AssetContainer, scene: Scene): number {
  let changed = 0
  for (const mesh of container.meshes) {
    if (mesh.material?.name !== LOADER_DEFAULT) continue
    mesh.material = plainMaterial(scene)
    changed += 1
  }
  return changed
}
