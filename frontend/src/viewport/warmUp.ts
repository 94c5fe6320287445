/**
 * Shaders compiled before the first mesh arrives. A program is compiled and linked when a
 * material is first checked for readiness, but a software renderer (SwiftShader, as Chromium
 * without a usable GPU) builds its machine code only when it first draws with the program,
 * and the page's thread waits for that at the next read-back of the canvas: the frame that
 * showed the first mesh held the page for 100-140 ms more than the frames after it (a
 * Chromium trace of bench.workspace's first-mesh load, 2 shared cores). So the view adds the
 * plain material once, as a thin instance (how objects are drawn) of one triangle scaled
 * below a pixel. What it buys is measured only in part: its thin-instance variant of the
 * program is compiled before the first mesh is (the mesh's draw then uses it), but the
 * render loop draws nothing until the whole scene is ready, so the warm-up is drawn in the
 * same frame as the first mesh, not before it, and that frame still pays SwiftShader's
 * build (about 80 ms, a later trace). Drawing it earlier moved the cost, it did not remove
 * it (an A/B of 20 loads each: 764 against 611 ms to the first mesh).
 */
import { Matrix, Vector3 } from '@babylonjs/core/Maths/math.vector'
import { Mesh } from '@babylonjs/core/Meshes/mesh'
import { VertexData } from '@babylonjs/core/Meshes/mesh.vertexData'
import '@babylonjs/core/Meshes/thinInstanceMesh'
import type { Scene } from '@babylonjs/core/scene'
import { plainMaterial } from './plainMaterial'

/** Adds the plain material once, on a mesh too small to see that is disposed after its first
 *  frame; returns the mesh. */
export function warmUpPlainMaterial(scene: Scene): Mesh {
  const mesh = new Mesh('warm-up', scene)
  const data = new VertexData()
  data.positions = [0, 0, 0, 1, 0, 0, 0, 0, 1] // the attributes of a loaded mesh: positions
  data.normals = [0, 1, 0, 0, 1, 0, 0, 1, 0] // and normals
  data.indices = [0, 2, 1]
  data.applyToMesh(mesh)
  mesh.material = plainMaterial(scene)
  const tiny = Matrix.Scaling(1e-6, 1e-6, 1e-6).multiply(Matrix.Translation(0, -1e-3, 0))
  mesh.thinInstanceSetBuffer('matrix', new Float32Array(tiny.asArray()), 16, true)
  mesh.isPickable = false
  mesh.alwaysSelectAsActiveMesh = true // no culling test: it is drawn in the next frame
  mesh.position = Vector3.Zero()
  mesh.onAfterRenderObservable.addOnce(() => {
    // Not while the frame is being drawn: after it.
    scene.onAfterRenderObservable.addOnce(() => mesh.dispose(false, false))
  })
  return mesh
}
