/**
 * Thin instances of one loaded GLB. Every scene object that shows the same mesh (duplicates,
 * or a generated mesh reused from the cache) becomes one matrix in a GPU buffer of a single
 * host mesh per glTF primitive, so a thousand copies cost the draw calls of one. The host's
 * own transform stays the identity; each instance matrix is the primitive's place inside the
 * GLB times the object's transform (Babylon applies the instance matrix before the mesh's).
 *
 * An instance has no node of its own to outline, attach a gizmo to or recolour, so the
 * viewport takes an object out of here ("promotes" it to a copy of the meshes) while it is
 * selected, outlined or heat-mapped, and puts it back after.
 */
import type { AssetContainer } from '@babylonjs/core/assetContainer'
import { Matrix, Vector3 } from '@babylonjs/core/Maths/math.vector'
import { Mesh } from '@babylonjs/core/Meshes/mesh'
import '@babylonjs/core/Meshes/thinInstanceMesh'
import type { TransformNode } from '@babylonjs/core/Meshes/transformNode'

interface Host {
  mesh: Mesh
  /** The primitive's world matrix inside the GLB (its node hierarchy at the origin). */
  local: Matrix
}

export class InstancedModel {
  private readonly hosts: Host[] = []
  private readonly members = new Map<string, TransformNode>()
  /** Object ids in instance order, as drawn by the last `flush`. */
  private order: string[] = []
  private dirty = true
  private readonly world = new Matrix()
  /** Triangles of one instance. */
  readonly triangles: number
  /** Corners of the GLB's bounding box, in its own space. */
  readonly corners: Vector3[]

  constructor(container: AssetContainer, name: string) {
    const copy = container.instantiateModelsToScene(
      (n) => `instances:${name}:${n}`, false, { doNotInstantiate: true })
    let min = new Vector3(Infinity, Infinity, Infinity)
    let max = new Vector3(-Infinity, -Infinity, -Infinity)
    let triangles = 0
    for (const root of copy.rootNodes) {
      for (const node of [root, ...root.getChildMeshes(false)]) {
        if (!(node instanceof Mesh) || node.getTotalIndices() === 0) continue
        const local = node.computeWorldMatrix(true).clone()
        const box = node.getBoundingInfo().boundingBox
        for (const corner of box.vectors) {
          const p = Vector3.TransformCoordinates(corner, local)
          min = Vector3.Minimize(min, p)
          max = Vector3.Maximize(max, p)
        }
        triangles += node.getTotalIndices() / 3
        this.hosts.push({ mesh: node, local })
      }
    }
    for (const { mesh } of this.hosts) {
      mesh.parent = null
      mesh.position.setAll(0)
      mesh.rotationQuaternion = null
      mesh.rotation.setAll(0)
      mesh.scaling.setAll(1)
      mesh.thinInstanceEnablePicking = true
      mesh.isPickable = true
      mesh.metadata = { instances: this }
      mesh.setEnabled(false)
    }
    for (const root of copy.rootNodes) root.dispose(false, false) // the emptied hierarchy
    this.triangles = triangles
    this.corners = Number.isFinite(min.x)
      ? [min, max].flatMap((a) => [min, max].flatMap((b) => [min, max].map(
        (c) => new Vector3(a.x, b.y, c.z))))
      : []
  }

  get count(): number {
    return this.members.size
  }

  get meshes(): Mesh[] {
    return this.hosts.map((h) => h.mesh)
  }

  has(objectId: string): boolean {
    return this.members.has(objectId)
  }

  add(objectId: string, root: TransformNode): void {
    this.members.set(objectId, root)
    this.dirty = true
  }

  remove(objectId: string): void {
    if (this.members.delete(objectId)) this.dirty = true
  }

  /** An object's transform or visibility changed. */
  touch(objectId: string): void {
    if (this.members.has(objectId)) this.dirty = true
  }

  /** The object drawn as instance `index` by the last flush. */
  objectAt(index: number): string | null {
    return this.order[index] ?? null
  }

  /** Writes the instance matrices if anything changed since the last call; returns whether
   *  it did. Hidden objects are left out of the buffer. */
  flush(): boolean {
    if (!this.dirty) return false
    this.dirty = false
    this.order = [...this.members].filter(([, root]) => root.isEnabled()).map(([id]) => id)
    const roots = this.order.map((id) => this.members.get(id)!.computeWorldMatrix(true))
    for (const { mesh, local } of this.hosts) {
      mesh.setEnabled(roots.length > 0)
      if (!roots.length) {
        // An empty buffer is refused (its attribute views start past its end); a host that
        // is off draws nothing anyway.
        mesh.thinInstanceSetBuffer('matrix', null)
        continue
      }
      const buffer = new Float32Array(16 * roots.length)
      roots.forEach((root, i) => {
        local.multiplyToRef(root, this.world)
        this.world.copyToArray(buffer, 16 * i)
      })
      mesh.thinInstanceSetBuffer('matrix', buffer, 16, false)
      mesh.thinInstanceRefreshBoundingInfo(false)
    }
    return true
  }

  /** Whether every host's material is compiled for instanced drawing. */
  isReady(): boolean {
    return this.hosts.every(({ mesh }) => mesh.isReady(true, true))
  }

  dispose(): void {
    for (const { mesh } of this.hosts) mesh.dispose(false, false)
    this.hosts.length = 0
    this.members.clear()
    this.order = []
  }
}
