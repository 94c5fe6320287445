/**
 * The print bed: the default printer profile's build volume (x, y, z in mm, z up) drawn in
 * the viewer's Y-up frame as a plate at y = 0 centred on the origin with the volume's outline
 * above it, and what stands a loaded mesh upright on it (see `standOnBed`).
 */
import type { AssetContainer } from '@babylonjs/core/assetContainer'
import type { AbstractMesh } from '@babylonjs/core/Meshes/abstractMesh'
import { ShaderMaterial } from '@babylonjs/core/Materials/shaderMaterial'
import { ShaderStore } from '@babylonjs/core/Engines/shaderStore'
import { Color3, Color4 } from '@babylonjs/core/Maths/math.color'
import { Matrix, Quaternion, Vector3 } from '@babylonjs/core/Maths/math.vector'
import { CreateGround } from '@babylonjs/core/Meshes/Builders/groundBuilder'
import { CreateLineSystem } from '@babylonjs/core/Meshes/Builders/linesBuilder'
import { TransformNode } from '@babylonjs/core/Meshes/transformNode'
import type { Scene } from '@babylonjs/core/scene'
import printer from '../printerProfile.json'
import { uprightRotation, zUpToYUp, type UpAxis } from './upAxis'

type Vec3 = [number, number, number]

export const BUILD_VOLUME_MM = printer.build_volume_mm as Vec3

/** The build volume in the viewer's frame: its plate at y = 0, centred on the origin. */
export function buildBox(volume: Vec3 = BUILD_VOLUME_MM): { min: Vec3; max: Vec3 } {
  const [x, y, z] = volume
  const corner = zUpToYUp([x / 2, y / 2, z]) // the far top corner: (x/2, z, -y/2)
  return { min: [-corner[0], 0, corner[2]], max: [corner[0], corner[1], -corner[2]] }
}

/** The move that centres a box's footprint on the origin and sets its lowest point on the
 *  plate (y = 0). */
export function restOffset(min: Vec3, max: Vec3): Vec3 {
  return [-(min[0] + max[0]) / 2, -min[1], -(min[2] + max[2]) / 2]
}

const PLATE_LINE_MM = 10
const PLATE = new Color3(0.14, 0.15, 0.18)
const PLATE_LINE = new Color4(0.24, 0.26, 0.3, 1)
const VOLUME_EDGE = new Color4(0.45, 0.5, 0.6, 1)

/** Marks the bed's meshes: they are the room, not the scene, so render statistics leave them
 *  out as they leave out the grid's lines. */
export const FURNITURE = { furniture: true }

/** Draws the plate (with a line every 10 mm) and the build volume's edges; nothing pickable. */
export function drawPrintBed(scene: Scene, volume: Vec3 = BUILD_VOLUME_MM): void {
  const { min, max } = buildBox(volume)
  const [w, d] = [max[0] - min[0], max[2] - min[2]]
  const plate = CreateGround('print-bed', { width: w, height: d }, scene)
  plate.position.y = -0.05 // just under the objects that rest on it
  plate.metadata = FURNITURE
  // The plate can cover the whole view, and a software renderer (SwiftShader) pays for every
  // pixel it covers, on every frame drawn, including those drawn while the first mesh's
  // shaders compile: one opaque, unlit draw (a flat colour, no lights, no blending, nothing
  // sorted behind it). A lit, 85 % opaque plate, drawn in the transparent pass after every
  // object, put page load to the first visible mesh at 3.0 s against 2.1 s for this one
  // (bench.workspace's load, same build otherwise, a shared 2-core machine).
  plate.material = plateMaterial(scene)
  settle(plate)

  // The plate's lines and the volume's edges are one line system: one draw for both.
  const lines: Vector3[][] = []
  const colors: Color4[][] = []
  const line = (from: Vector3, to: Vector3, color: Color4): void => {
    lines.push([from, to])
    colors.push([color, color])
  }
  const y = -0.02
  for (let x = Math.ceil(min[0] / PLATE_LINE_MM) * PLATE_LINE_MM; x <= max[0]; x += PLATE_LINE_MM) {
    line(new Vector3(x, y, min[2]), new Vector3(x, y, max[2]), PLATE_LINE)
  }
  for (let z = Math.ceil(min[2] / PLATE_LINE_MM) * PLATE_LINE_MM; z <= max[2]; z += PLATE_LINE_MM) {
    line(new Vector3(min[0], y, z), new Vector3(max[0], y, z), PLATE_LINE)
  }
  const c = (i: number, j: number, k: number): Vector3 =>
    new Vector3(i ? max[0] : min[0], j ? max[1] : min[1], k ? max[2] : min[2])
  for (const [p, q] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) {
    line(c(0, p, q), c(1, p, q), VOLUME_EDGE) // along x
    line(c(p, 0, q), c(p, 1, q), VOLUME_EDGE) // upright
    line(c(p, q, 0), c(p, q, 1), VOLUME_EDGE) // along z
  }
  const bedLines = CreateLineSystem('print-bed-lines', { lines, colors, useVertexAlpha: false }, scene)
  settle(bedLines)
}

ShaderStore.ShadersStore.printBedVertexShader = `precision highp float;
attribute vec3 position;
uniform mat4 worldViewProjection;
void main(void) { gl_Position = worldViewProjection * vec4(position, 1.0); }`
ShaderStore.ShadersStore.printBedFragmentShader = `precision mediump float;
uniform vec3 colour;
void main(void) { gl_FragColor = vec4(colour, 1.0); }`

/** The plate's colour: one constant, the least a fragment can cost. The standard material,
 *  even unlit, ran its normal, view direction and emissive terms on every pixel the plate
 *  covers, which is most of the view: a GPU-synchronised frame (bench.workspace-style orbit,
 *  100 thin instances, SwiftShader) took 28.7 ms with the plate and 20.1 ms without it. */
function plateMaterial(scene: Scene): ShaderMaterial {
  const material = new ShaderMaterial('print-bed', scene, 'printBed', {
    attributes: ['position'], uniforms: ['worldViewProjection', 'colour'],
  })
  material.setColor3('colour', PLATE)
  material.backFaceCulling = false
  material.freeze()
  return material
}

/** Fixes a mesh of the room for good: nothing moves it, nothing picks it, and it is always in
 *  view (it is under or around every object), so no frame computes its world matrix, its
 *  bounds or whether the camera sees it. */
export function settle(mesh: AbstractMesh): void {
  mesh.isPickable = false
  mesh.freezeWorldMatrix()
  mesh.doNotSyncBoundingInfo = true
  mesh.alwaysSelectAsActiveMesh = true
}

/** Turns a loaded mesh file upright (`up`: its file's up axis) and rests it on the plate,
 *  its footprint centred on the origin: the object's own transform then places it on the
 *  bed. Done once per loaded file, before its nodes are copied or instanced. */
export function standOnBed(container: AssetContainer, up: UpAxis): void {
  const roots = container.rootNodes.filter((n): n is TransformNode => n instanceof TransformNode)
  const turn = Matrix.Identity()
  uprightRotation(up).toRotationMatrix(turn)
  for (const root of roots) appendToLocal(root, turn)
  let min: Vector3 | null = null
  let max: Vector3 | null = null
  for (const root of roots) {
    root.computeWorldMatrix(true)
    for (const node of root.getDescendants(false)) {
      if (node instanceof TransformNode) node.computeWorldMatrix(true)
    }
  }
  for (const mesh of container.meshes) {
    if (mesh.getTotalVertices() === 0) continue
    const box = mesh.getBoundingInfo()
    box.update(mesh.getWorldMatrix())
    min = min ? Vector3.Minimize(min, box.boundingBox.minimumWorld) : box.boundingBox.minimumWorld.clone()
    max = max ? Vector3.Maximize(max, box.boundingBox.maximumWorld) : box.boundingBox.maximumWorld.clone()
  }
  if (!min || !max) return
  const offset = restOffset(min.asArray() as Vec3, max.asArray() as Vec3)
  const move = Matrix.Translation(...offset)
  for (const root of roots) {
    appendToLocal(root, move)
    root.computeWorldMatrix(true)
    for (const node of root.getDescendants(false)) {
      if (node instanceof TransformNode) node.computeWorldMatrix(true)
    }
  }
}

/** Sets a root node's local transform to itself followed by `after` (row vectors). */
function appendToLocal(node: TransformNode, after: Matrix): void {
  const rotation = node.rotationQuaternion ?? Quaternion.FromEulerVector(node.rotation)
  const local = Matrix.Compose(node.scaling, rotation, node.position)
  const result = local.multiply(after)
  const q = new Quaternion()
  result.decompose(node.scaling, q, node.position)
  node.rotationQuaternion = q
}
