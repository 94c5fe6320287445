/**
 * The Babylon.js view of the scene: camera, grid, axes, lights, one node per scene object
 * with its stage mesh, picking, selection outlines and the move/rotate/scale gizmos. It knows
 * nothing of Yjs: it is given objects and reports picks and transform edits.
 */
// Deep imports keep the bundle to what the view uses; the bare imports register features.
import type { AbstractMesh } from '@babylonjs/core/Meshes/abstractMesh'
import { ArcRotateCamera } from '@babylonjs/core/Cameras/arcRotateCamera'
import '@babylonjs/core/Culling/ray' // picking
import { Engine } from '@babylonjs/core/Engines/engine'
import { SceneInstrumentation } from '@babylonjs/core/Instrumentation/sceneInstrumentation'
import { PointerEventTypes, type PointerInfo } from '@babylonjs/core/Events/pointerEvents'
import { GizmoManager } from '@babylonjs/core/Gizmos/gizmoManager'
import { HighlightLayer } from '@babylonjs/core/Layers/highlightLayer'
import '@babylonjs/core/Layers/effectLayerSceneComponent'
import { DirectionalLight } from '@babylonjs/core/Lights/directionalLight'
import { HemisphericLight } from '@babylonjs/core/Lights/hemisphericLight'
import { LoadAssetContainerAsync } from '@babylonjs/core/Loading/sceneLoader'
import type { AssetContainer } from '@babylonjs/core/assetContainer'
import { VertexBuffer } from '@babylonjs/core/Buffers/buffer'
import type { Material } from '@babylonjs/core/Materials/material'
import { PBRMaterial } from '@babylonjs/core/Materials/PBR/pbrMaterial'
import { StandardMaterial } from '@babylonjs/core/Materials/standardMaterial'
import { Color3, Color4 } from '@babylonjs/core/Maths/math.color'
import { Matrix, Quaternion, Vector3 } from '@babylonjs/core/Maths/math.vector'
import { CreateBox } from '@babylonjs/core/Meshes/Builders/boxBuilder'
import { CreateCylinder } from '@babylonjs/core/Meshes/Builders/cylinderBuilder'
import { CreateLineSystem } from '@babylonjs/core/Meshes/Builders/linesBuilder'
import { LinesMesh } from '@babylonjs/core/Meshes/linesMesh'
import { Mesh } from '@babylonjs/core/Meshes/mesh'
import { TransformNode } from '@babylonjs/core/Meshes/transformNode'
import type { Observer } from '@babylonjs/core/Misc/observable'
// A mesh with a material of its own is drawn with PBR: its shaders come with the view rather
// than as chunks asked for only once the first such mesh has been parsed, in series before it
// shows. (A mesh without one is drawn with the standard material, as the print bed is.)
import '@babylonjs/core/Shaders/pbr.vertex'
import '@babylonjs/core/Shaders/pbr.fragment'
// The grid's, the axes' and the plain material's shaders, likewise: the furniture and the
// warm-up (`warmUpPlainMaterial`) can then be drawn in the first frames after the view is
// made, while the page waits for the scene, rather than a few chunk round trips later, when
// their first draw (which a software renderer compiles for, holding the page's thread) fell
// between the scene's arrival and the first mesh.
import '@babylonjs/core/Shaders/color.vertex'
import '@babylonjs/core/Shaders/color.fragment'
import '@babylonjs/core/Shaders/default.vertex'
import '@babylonjs/core/Shaders/default.fragment'
import { Scene } from '@babylonjs/core/scene'
import '@babylonjs/loaders/glTF'
import { prepareMeshopt } from './meshopt'
import type { CameraView } from '../collab'
import { heatColour } from '../faceMaps'
import type { MaterialPreview } from '../materialPreview'
import { farMeshUrl, meshUrl, type SceneObject, type Transform } from '../scene'
import { studioEnvironment } from './environment'
import { InstancedModel } from './instances'
import { hasMaterials, usePlainMaterial } from './plainMaterial'
import { download, takePrefetched } from './prefetch'
import { drawPrintBed, FURNITURE, settle, standOnBed } from './printBed'
import { upAxisOf, type UpAxis } from './upAxis'
import { warmUpPlainMaterial } from './warmUp'
import { shadedFlat } from './shading'
import { FrameTimes, type RenderStats } from './stats'
import type { Footprint } from '../placement'

export type GizmoMode = 'move' | 'rotate' | 'scale'

export interface MeshState {
  /** The stage whose mesh is on screen (null while none is). */
  shown: string | null
  loading: boolean
  error: string | null
  triangles: number
  /** Whether the mesh on screen is shaded flat (a file's, or all with the Flat switch). */
  flat?: boolean
}

export interface ViewportEvents {
  /** A click picked an object (null: the empty background); `additive` when Shift or Ctrl
   *  was held, to add it to the selection or take it out. */
  onPick(id: string | null, additive: boolean): void
  /** A gizmo moved an object; `final` is true when the drag ended. */
  onTransform(id: string, transform: Transform, final: boolean): void
  onMeshState(id: string, state: MeshState): void
  /** The user moved the camera (orbit, pan, zoom). */
  onCamera?(view: CameraView): void
  /** While statistics are on: what the last frames cost, a few times a second. */
  onStats?(stats: RenderStats): void
}

export interface ViewportOptions {
  /** Draw objects that share a mesh as thin instances of it (default). Off draws one copy
   *  per object, for comparing the two. */
  instancing?: boolean
}

/** A collaborator's camera, drawn as a small marker looking at its target. */
export interface CameraMarker {
  key: string
  color: string
  position: [number, number, number]
  target: [number, number, number]
  /** Who looks from there, written over the marker. */
  name?: string
}

interface Entry {
  object: SceneObject
  root: TransformNode
  /** The mesh URL asked for; undefined before the first, null for a placeholder. */
  url: string | null | undefined
  shownUrl: string | null
  /** The object's own nodes: a copy of the meshes, or the placeholder box. */
  content: TransformNode | AbstractMesh | null
  /** The source key while the object is drawn as a thin instance of that source instead. */
  instanced: string | null
  /** A coarser stage drawn instead while the object is far away (see `updateDetail`):
   *  its source key, its model once loaded, and whether the object is in it now. */
  far: { key: string; model: InstancedModel | null; active: boolean } | null
  state: MeshState
}

const LIVE_WRITE_MS = 80

/** Beyond this many of its radii from the camera an object covers a few degrees of the view
 *  (about 80 px of 860), where its preview stage looks the same as its final one. */
const FAR_RADII = 25

/** One GLB loaded once and shown by every object that names it (duplicates): as thin
 *  instances of `model`, or, for an object that needs nodes of its own, as clones of its
 *  meshes, which share the vertex buffers and materials on the GPU. */
interface Source {
  container: Promise<AssetContainer>
  /** Set once the container has loaded. */
  loaded: AssetContainer | null
  model: InstancedModel | null
  users: number
}

export interface HeatMap {
  objectId: string
  kind: string
  values: Float32Array
  /** The printer's minimum wall, for the thickness colours. */
  limit: number
}

export class Viewport {
  readonly engine: Engine
  readonly scene: Scene
  readonly camera: ArcRotateCamera
  /** Made at the first selection that can be edited (see `gizmoManager`). */
  private gizmos: GizmoManager | null = null
  /** Made on the first selection: its glow and blur passes add render targets and shaders
   * that a first load would otherwise compile before it can draw the first mesh. */
  private highlight: HighlightLayer | null = null
  private readonly entries = new Map<string, Entry>()
  private selected: string | null = null
  private remoteSelections = new Map<string, string>()
  private ownColor = '#ffffff'
  private mode: GizmoMode = 'move'
  private readOnly = false
  private dragging = false
  private lastLiveWrite = 0
  private pointerObserver: Observer<PointerInfo>
  private resizeObserver: ResizeObserver
  private placeholderMaterial: StandardMaterial
  private readonly wired = new WeakSet<object>()
  private readonly canvas: HTMLCanvasElement
  /** Frames still to draw; the first shows the background while shaders compile. */
  private dirtyFrames = 1
  private readonly sources = new Map<string, Source>()
  /** Mesh files on their way for a source not made yet (see `prefetch`), by URL. */
  private readonly downloads = new Map<string, Promise<Uint8Array>>()
  private flat = false
  private heat: { objectId: string; overlays: AbstractMesh[]; hidden: AbstractMesh[] } | null =
    null
  /** The object a heat map is being put on: it needs its own copy of the meshes. */
  private pinned: string | null = null
  private preview: { wanted: MaterialPreview; material: PBRMaterial;
                     replaced: Map<AbstractMesh, { material: Material | null; colours: boolean }> } | null = null
  private readonly instancing: boolean
  private instrumentation: SceneInstrumentation | null = null
  private readonly frames = new FrameTimes(120)
  private lastStats = 0
  private statsStale = true
  private changePending = false
  /** The camera or the objects moved since the levels of detail were chosen. */
  private detailStale = true
  private lastChangeDrawn = 0
  private readonly onInput = (): void => this.invalidate()

  constructor(canvas: HTMLCanvasElement, private readonly events: ViewportEvents,
              options: ViewportOptions = {}) {
    this.instancing = options.instancing ?? true
    // What the glTF loader, the PBR material and the plain material (`usePlainMaterial`)
    // import on first use, asked for now: these chunks come while the page waits for the
    // scene, not in series after the first download.
    void Promise.all([
      import('@babylonjs/core/Materials/PBR/pbrMaterial.pure'),
      import('@babylonjs/loaders/glTF/2.0/pbrMaterialLoadingAdapter'),
      import('@babylonjs/core/Shaders/pbr.vertex'),
      import('@babylonjs/core/Shaders/pbr.fragment'),
      import('@babylonjs/core/Shaders/default.vertex'),
      import('@babylonjs/core/Shaders/default.fragment'),
    ]).catch(() => {}) // the loader asks again, and reports what fails
    // Multisampled edges cost a graphics card next to nothing, and a renderer that draws on
    // the CPU about as much as everything else in the frame: there, the frame time comes first.
    this.engine = new Engine(canvas, !drawsOnCpu(),
                             { preserveDrawingBuffer: true, stencil: true })
    const scene = (this.scene = new Scene(this.engine))
    scene.useRightHandedSystem = true // glTF and the server's meshes are right-handed, Y up
    scene.clearColor = new Color4(0.09, 0.1, 0.12, 1)

    this.camera = new ArcRotateCamera('camera', Math.PI / 4, Math.PI / 3, 6, Vector3.Zero(), scene)
    this.camera.attachControl(true)
    this.camera.wheelDeltaPercentage = 0.02
    this.camera.panningSensibility = 400
    this.camera.lowerRadiusLimit = 0.2
    this.camera.upperRadiusLimit = 500
    this.camera.minZ = 0.01

    // The two lights add the shading that reads shape on matte surfaces and light alone the
    // plain material of a mesh without one (see `usePlainMaterial`); PBR materials also take
    // light from the environment (`usePbrEnvironment`).
    const sky = new HemisphericLight('sky', new Vector3(0, 1, 0), scene)
    sky.intensity = 0.45
    sky.groundColor = new Color3(0.25, 0.24, 0.22)
    const key = new DirectionalLight('key', new Vector3(-0.5, -1, -0.6), scene)
    key.intensity = 0.6
    warmUpPlainMaterial(scene) // lit by the two lights, as the meshes will be
    prepareMeshopt()

    this.placeholderMaterial = new StandardMaterial('placeholder', scene)
    this.placeholderMaterial.wireframe = true
    this.placeholderMaterial.emissiveColor = new Color3(0.6, 0.6, 0.6)
    this.placeholderMaterial.disableLighting = true

    this.camera.onViewMatrixChangedObservable.add(() => {
      this.detailStale = true
      const c = this.camera
      this.events.onCamera?.({ alpha: c.alpha, beta: c.beta, radius: c.radius,
                               target: [c.target.x, c.target.y, c.target.z] })
    })

    this.buildGridAndAxes()
    drawPrintBed(scene)

    this.pointerObserver = scene.onPointerObservable.add((info) => {
      if (info.type !== PointerEventTypes.POINTERTAP || this.dragging) return
      const pick = info.pickInfo
      const e = info.event as PointerEvent
      this.events.onPick(pick?.pickedMesh ? this.objectIdOf(pick.pickedMesh, pick.thinInstanceIndex) : null,
                         e.shiftKey || e.ctrlKey || e.metaKey)
    }, PointerEventTypes.POINTERTAP)

    // Render on demand: after a change, while the user interacts, and while the camera
    // still glides (inertia). A still scene costs nothing, which matters on CPU renderers.
    // Frame times count only frames drawn back to back (an orbit), not the pauses between.
    // While something is not ready to draw (a shader compiling, a file loading) the loop
    // asks again on every tick and draws once it is: drawing the unready scene on every tick
    // meanwhile (30-odd frames over a first load) held the page's thread at each frame's
    // read-back under a software renderer, in series with the download and the parse.
    let drewLastTick = false
    let unready = true
    this.engine.runRenderLoop(() => {
      this.updateDetail()
      for (const source of this.sources.values()) source.model?.flush()
      const start = performance.now()
      let draw = this.dirtyFrames > 0 || this.cameraMoving()
      if (!draw && unready && scene.isReady()) {
        unready = false
        draw = true
        this.invalidate(2) // this frame and one more
      }
      if (draw) {
        scene.render()
        this.frames.add(start, performance.now() - start, drewLastTick)
        if (this.dirtyFrames > 0) {
          this.dirtyFrames -= 1
          if (this.dirtyFrames === 0) unready = !scene.isReady() // the last frame asked for
        }
        this.statsStale = true
        if (this.changePending) {
          this.changePending = false
          this.lastChangeDrawn = performance.timeOrigin + performance.now()
        }
      }
      drewLastTick = draw
      if (this.instrumentation && this.statsStale && start - this.lastStats > 250) {
        this.lastStats = start
        this.statsStale = false
        this.events.onStats?.(this.stats())
      }
    })
    for (const type of ['pointerdown', 'pointermove', 'pointerup', 'wheel', 'keydown']) {
      canvas.addEventListener(type, this.onInput, { passive: true })
    }
    this.canvas = canvas
    this.resizeObserver = new ResizeObserver(() => {
      this.engine.resize()
      this.invalidate(1) // the same scene at the new size: one frame draws it
    })
    this.resizeObserver.observe(canvas)
  }

  // -- scene contents -------------------------------------------------------------------

  /** Shows exactly these objects (the live document or a time-travel snapshot). */
  setObjects(objects: SceneObject[], readOnly: boolean): void {
    this.readOnly = readOnly
    const keep = new Set(objects.map((o) => o.id))
    for (const [id, entry] of this.entries) {
      if (!keep.has(id)) {
        if (this.heat?.objectId === id) this.clearHeatMap()
        this.dropShown(entry)
        entry.root.dispose(false, false)
        this.entries.delete(id)
        this.invalidate()
      }
    }
    for (const object of objects) this.upsert(object)
    this.changePending = true
    this.refreshSelection()
  }

  private upsert(object: SceneObject): void {
    let entry = this.entries.get(object.id)
    if (!entry) {
      const root = new TransformNode(`object:${object.id}`, this.scene)
      root.metadata = { objectId: object.id }
      root.rotationQuaternion = Quaternion.Identity()
      entry = {
        object, root, url: undefined, shownUrl: null, content: null, instanced: null, far: null,
        state: { shown: null, loading: false, error: null, triangles: 0 },
      }
      this.entries.set(object.id, entry)
    }
    entry.object = object
    if (!(this.dragging && this.selected === object.id)) applyTransform(entry.root, object.transform)
    entry.root.setEnabled(object.visible)
    if (entry.instanced) this.sources.get(entry.instanced)?.model?.touch(object.id)
    entry.far?.model?.touch(object.id)
    this.detailStale = true
    // An object with nothing on screen yet (its mesh is on its way) changes no pixel.
    if (entry.content || entry.instanced) this.invalidate()
    const url = meshUrl(object)
    if (url !== entry.url) {
      entry.url = url
      if (url) void this.load(entry, url, object.stage ?? 'mesh') // an uploaded or made mesh
      else this.showPlaceholder(entry)
    }
  }

  /** Loads a stage's GLB and swaps it in for the previous stage once it is ready. */
  private async load(entry: Entry, url: string, stage: string | null): Promise<void> {
    this.report(entry, { loading: true, error: null })
    let content: TransformNode | null = null
    this.prefetch(url)
    // Both follow the mesh's chain of assets, from one answer per asset, asked at once.
    const [fromFile, up] = await Promise.all([shadedFlat(entry.object), upAxisOf(entry.object)])
    const flat = this.flat || fromFile
    const key = `${flat ? 'flat' : 'smooth'} ${url}`
    const stale = (): boolean => entry.url !== url || this.entries.get(entry.object.id) !== entry
    try {
      const container = await this.acquire(key, url, up, flat)
      const model = this.sources.get(key)?.model
      if (stale() || !model) {
        this.release(key) // a newer stage arrived meanwhile, or the object is gone
        return
      }
      if (this.wantsCopy(entry.object.id)) {
        content = this.copyOf(entry, key, container)
        await whenReady(content.getChildMeshes())
      } else {
        await whenReady(model.meshes, () => model.isReady())
      }
      if (stale()) {
        if (content) this.dropContent(content)
        else this.release(key)
        return
      }
      // The previous stage stays on screen until this one's shaders are compiled.
      if (this.heat?.objectId === entry.object.id) this.clearHeatMap()
      this.dropShown(entry)
      // Rotation (and scale) turn about the mesh's centre, not its file's origin; every
      // client finds the same centre in the same mesh, so a stored rotation shows alike.
      entry.root.setPivotPoint(centreOf(container))
      if (content) {
        content.setEnabled(true)
        entry.content = content
      } else {
        model.add(entry.object.id, entry.root)
        entry.instanced = key
      }
      const far = farMeshUrl(entry.object)
      if (far && this.instancing) void this.attachFar(entry, far)
      entry.shownUrl = url
      this.report(entry, { shown: stage, loading: false, triangles: model.triangles, flat })
      this.invalidate()
      this.refreshSelection()
      if (this.preview?.wanted.objectId === entry.object.id) this.setMaterialPreview(this.preview.wanted)
    } catch (error) {
      if (content) this.dropContent(content)
      if (entry.url !== url) return
      this.report(entry, { loading: false, error: `Could not load the ${stage} mesh: ${String(error)}` })
    }
  }

  /** The object's own copy of a loaded GLB (clones sharing its buffers), hidden until the
   *  caller enables it; it holds the caller's count on `key`. */
  private copyOf(entry: Entry, key: string, container: AssetContainer): TransformNode {
    const content = new TransformNode(`mesh:${entry.object.id}`, this.scene)
    content.metadata = { source: key }
    content.setEnabled(false)
    content.parent = entry.root
    const copy = container.instantiateModelsToScene(
      (name) => `${entry.object.id}:${name}`, false, { doNotInstantiate: true })
    for (const node of copy.rootNodes) node.parent = content
    for (const mesh of content.getChildMeshes()) {
      mesh.metadata = { objectId: entry.object.id }
      mesh.isPickable = true
    }
    return content
  }

  /** Loads the coarse stage `url` for `entry` to show while it is far away. */
  private async attachFar(entry: Entry, url: string): Promise<void> {
    const key = `${this.flat ? 'flat' : 'smooth'} ${url}`
    const far = { key, model: null as InstancedModel | null, active: false }
    entry.far = far
    try {
      await this.acquire(key, url, 'y', this.flat) // a generated object's preview stage
    } catch {
      if (entry.far === far) entry.far = null
      return // no preview stage: the object keeps its own stage at every distance
    }
    const model = this.sources.get(key)?.model
    if (model) await whenReady(model.meshes, () => model.isReady())
    if (entry.far !== far || !model) {
      this.release(key) // replaced or dropped meanwhile
      return
    }
    far.model = model
    this.detailStale = true
    this.invalidate()
  }

  /** Moves each instanced object with a coarse stage between its own stage's instances and
   *  the coarse ones, by its distance from the camera (level of detail). */
  private updateDetail(): void {
    if (!this.detailStale) return
    this.detailStale = false
    const eye = this.camera.position
    for (const entry of this.entries.values()) {
      const far = entry.far
      const near = entry.instanced ? this.sources.get(entry.instanced)?.model : null
      if (!far?.model || !near) continue
      const box = this.boundsOf(entry)
      if (!box) continue
      const centre = box.min.add(box.max).scale(0.5)
      const radius = Math.max(box.max.subtract(box.min).length() / 2, 1e-6)
      const away = Vector3.Distance(eye, centre) > FAR_RADII * radius
      if (away === far.active) continue
      far.active = away
      if (away) {
        near.remove(entry.object.id)
        far.model.add(entry.object.id, entry.root)
      } else {
        far.model.remove(entry.object.id)
        near.add(entry.object.id, entry.root)
      }
    }
  }

  /** Takes whatever shows the object off screen, releasing its source. */
  private dropShown(entry: Entry): void {
    if (entry.content) this.dropContent(entry.content)
    entry.content = null
    if (entry.far) {
      if (entry.far.model) {
        entry.far.model.remove(entry.object.id)
        this.release(entry.far.key)
      } // else its load is still on the way and releases when it sees it was dropped
      entry.far = null
    }
    if (entry.instanced) {
      this.sources.get(entry.instanced)?.model?.remove(entry.object.id)
      this.release(entry.instanced)
      entry.instanced = null
    }
  }

  /** Whether an object needs nodes of its own rather than a thin instance: to be outlined,
   *  moved by a gizmo or heat-mapped. */
  private wantsCopy(id: string): boolean {
    return !this.instancing || id === this.selected || this.remoteSelections.has(id) ||
      id === this.pinned || id === this.preview?.wanted.objectId
  }

  /** Moves each shown object between a thin instance and its own copy, as `wantsCopy` says.
   *  The count on the source passes from one to the other. */
  private syncModes(): void {
    for (const entry of this.entries.values()) {
      const want = this.wantsCopy(entry.object.id)
      if (entry.instanced && want) {
        const key = entry.instanced
        const source = this.sources.get(key)
        if (!source?.loaded) continue
        if (entry.far?.active) {
          entry.far.model?.remove(entry.object.id)
          entry.far.active = false
        }
        const content = this.copyOf(entry, key, source.loaded)
        content.setEnabled(true)
        source.model?.remove(entry.object.id)
        entry.instanced = null
        entry.content = content
      } else if (!want && entry.content && !entry.instanced) {
        const key = (entry.content.metadata as { source?: string } | null)?.source
        const model = key ? this.sources.get(key)?.model : null
        if (!key || !model) continue // a placeholder
        entry.content.dispose(false, false)
        entry.content = null
        model.add(entry.object.id, entry.root)
        entry.instanced = key
        this.detailStale = true
      }
    }
  }

  /** Starts downloading `url` unless a loaded (or loading) source already has it: the bytes
   *  come while the shading and the up axis are asked for, instead of after them (a round
   *  trip and the file's transfer in series before every first mesh). `acquire` takes them. */
  private prefetch(url: string): void {
    if (this.downloads.has(url) || this.sources.has(`flat ${url}`) ||
        this.sources.has(`smooth ${url}`)) return
    const bytes = takePrefetched(url) ?? download(url) // asked for before the view was made
    bytes.catch(() => {}) // reported by the load that takes it
    this.downloads.set(url, bytes)
  }

  /** The loaded GLB of `url` (under `key`: URL and shading), loaded on first use, stood
   *  upright (`up`: its file's up axis) on the bed, and counted until `release`. */
  private acquire(key: string, url: string, up: UpAxis, flat: boolean): Promise<AssetContainer> {
    let source = this.sources.get(key)
    if (!source) {
      const created: Source = { container: Promise.resolve(null as never), loaded: null,
                                model: null, users: 0 }
      const bytes = this.downloads.get(url) ?? takePrefetched(url) ?? download(url)
      this.downloads.delete(url)
      created.container = bytes
        .then((data) => {
          const materials = hasMaterials(data)
          if (materials) this.usePbrEnvironment()
          return LoadAssetContainerAsync(data, this.scene, {
            pluginExtension: '.glb', pluginOptions: { gltf: { skipMaterials: !materials } },
          })
        })
        .then((c) => {
          standOnBed(c, up)
          usePlainMaterial(c, this.scene) // no PBR or environment for a mesh without a material
          if (flat) {
            for (const mesh of c.meshes) if (mesh instanceof Mesh) mesh.convertToFlatShadedMesh()
          }
          created.loaded = c
          created.model = new InstancedModel(c, key)
          if (created.users <= 0) this.disposeSource(created) // released while loading
          return c
        })
      source = created
      this.sources.set(key, source)
      created.container.catch(() => this.sources.delete(key))
    }
    source.users += 1
    return source.container
  }

  private release(key: string): void {
    const source = this.sources.get(key)
    if (!source) return
    source.users -= 1
    if (source.users <= 0) {
      this.sources.delete(key)
      if (source.loaded) this.disposeSource(source)
    }
  }

  private disposeSource(source: Source): void {
    source.model?.dispose()
    source.model = null
    source.loaded?.dispose()
    source.loaded = null
  }

  /** Dispose an object's shown copy (not the shared geometry) and release its source. */
  private dropContent(content: TransformNode | AbstractMesh): void {
    const key = (content.metadata as { source?: string } | null)?.source
    content.dispose(false, false)
    if (key) this.release(key)
  }

  private showPlaceholder(entry: Entry): void {
    this.dropShown(entry)
    const box = CreateBox(`placeholder:${entry.object.id}`, { size: 0.5 }, this.scene)
    box.material = this.placeholderMaterial
    box.metadata = { objectId: entry.object.id }
    box.parent = entry.root
    entry.root.setPivotPoint(Vector3.Zero())
    entry.content = box
    entry.shownUrl = null
    this.report(entry, { shown: null, loading: false, triangles: 0 })
  }

  private report(entry: Entry, patch: Partial<MeshState>): void {
    entry.state = { ...entry.state, ...patch }
    this.events.onMeshState(entry.object.id, entry.state)
  }

  private objectIdOf(mesh: AbstractMesh, instance = -1): string | null {
    const instances = (mesh.metadata as { instances?: InstancedModel } | null)?.instances
    if (instances) return instance >= 0 ? instances.objectAt(instance) : null
    let node: TransformNode | AbstractMesh | null = mesh
    while (node) {
      const id = (node.metadata as { objectId?: string } | null)?.objectId
      if (id) return id
      node = node.parent as TransformNode | null
    }
    return null
  }

  // -- selection, presence and gizmos ---------------------------------------------------

  setSelection(id: string | null, ownColor: string): void {
    this.selected = id
    this.ownColor = ownColor
    this.refreshSelection()
  }

  /** Object id → colour of the collaborators who have it selected. */
  setRemoteSelections(selections: Map<string, string>): void {
    this.remoteSelections = selections
    this.refreshSelection()
  }

  setGizmoMode(mode: GizmoMode): void {
    this.mode = mode
    this.applyGizmoMode()
  }

  setWireframe(on: boolean): void {
    if (this.scene.forceWireframe === on) return
    this.scene.forceWireframe = on
    this.invalidate()
  }

  /** Flat shading shows every facet (how a printer sees the mesh); smooth, the stored
   *  normals. Every mesh is loaded again, converted or not, since conversion cannot be
   *  undone in place. */
  setFlatShading(on: boolean): void {
    if (on === this.flat) return
    this.flat = on
    this.clearHeatMap()
    for (const entry of this.entries.values()) {
      if (entry.url) void this.load(entry, entry.url, entry.object.stage ?? 'mesh')
    }
  }

  /**
   * Colour an object's faces by a per-face map (overhang, wall thickness) from the mesh
   * worker's analysis, or clear it with `null`. The map's faces are the mesh's triangles in
   * file order, so it applies only when the counts agree; returns whether it was shown.
   */
  setHeatMap(map: HeatMap | null): boolean {
    this.clearHeatMap()
    if (!map) return true
    this.pinned = map.objectId
    this.syncModes()
    const entry = this.entries.get(map.objectId)
    const meshes = (entry?.content?.getChildMeshes() ?? []).filter(
      (m): m is Mesh => m instanceof Mesh && m.getTotalIndices() > 0)
    const total = meshes.reduce((n, m) => n + m.getTotalIndices() / 3, 0)
    if (!entry || total !== map.values.length) {
      this.pinned = null
      this.invalidate()
      this.refreshSelection()
      return false
    }
    const overlays: AbstractMesh[] = []
    let face = 0
    for (const mesh of meshes) {
      const overlay = mesh.clone(`heat:${mesh.name}`, mesh.parent)
      overlay.makeGeometryUnique()
      overlay.convertToFlatShadedMesh() // one vertex per face corner, in index order
      const faces = overlay.getTotalVertices() / 3
      const colours = new Float32Array(faces * 12)
      for (let f = 0; f < faces; f++, face++) {
        const [r, g, b] = heatColour(map.kind, map.values[face], map.limit)
        for (let corner = 0; corner < 3; corner++) colours.set([r, g, b, 1], (f * 3 + corner) * 4)
      }
      overlay.setVerticesData(VertexBuffer.ColorKind, colours)
      overlay.material = this.heatMaterial()
      overlay.metadata = { objectId: map.objectId }
      overlays.push(overlay)
      mesh.isVisible = false
    }
    this.heat = { objectId: map.objectId, overlays, hidden: meshes }
    this.invalidate()
    this.refreshSelection()
    return true
  }

  private clearHeatMap(): void {
    this.pinned = null
    if (!this.heat) return
    for (const overlay of this.heat.overlays) overlay.dispose(false, false)
    for (const mesh of this.heat.hidden) if (!mesh.isDisposed()) mesh.isVisible = true
    this.heat = null
    this.invalidate()
  }

  /**
   * Show a material on an object before it is baked (see `materialPreview`), or take the
   * preview away with `null`. Only this browser sees it; the object's own materials come
   * back untouched.
   */
  setMaterialPreview(wanted: MaterialPreview | null): void {
    if (this.preview) {
      for (const [mesh, was] of this.preview.replaced) {
        if (mesh.isDisposed()) continue
        mesh.material = was.material
        mesh.useVertexColors = was.colours
      }
      this.preview.replaced.clear()
    }
    if (!wanted) {
      if (this.preview) this.invalidate()
      this.preview?.material.dispose()
      this.preview = null
      this.refreshSelection() // the object may go back to being a thin instance
      return
    }
    if (!this.preview) {
      this.usePbrEnvironment()
      const material = new PBRMaterial('material-preview', this.scene)
      this.preview = { wanted, material, replaced: new Map() }
    }
    const { material, replaced } = this.preview
    this.preview.wanted = wanted
    material.albedoColor = new Color3(...wanted.color).toLinearSpace()
    material.metallic = wanted.metallic
    material.roughness = wanted.roughness
    this.syncModes() // an instance has no meshes of its own to recolour: give it some
    const entry = this.entries.get(wanted.objectId)
    for (const mesh of entry?.content?.getChildMeshes() ?? []) {
      if (!(mesh instanceof Mesh) || mesh.getTotalIndices() === 0) continue
      replaced.set(mesh, { material: mesh.material, colours: mesh.useVertexColors })
      mesh.material = material
      mesh.useVertexColors = false // the preview's colour, not the mesh's painted one
    }
    this.invalidate()
  }

  /** Gives the scene the environment PBR materials (a mesh's own, a material preview)
   *  reflect and take their ambient light from, before the first of them. Made up front it
   *  cost the view's start 20-30 ms (its texels, their spherical harmonics, a cube texture
   *  and its mipmaps) that a first mesh without a material of its own never uses. */
  private usePbrEnvironment(): void {
    if (this.scene.environmentTexture) return
    this.scene.environmentTexture = studioEnvironment(this.scene)
    this.scene.environmentIntensity = 0.65
  }

  private heatMaterialCache: StandardMaterial | null = null
  private readonly markers = new Map<string, { node: Mesh; material: StandardMaterial }>()

  /** Show where collaborators look from: a cone at each camera, pointing at its target. */
  setCameraMarkers(markers: CameraMarker[]): void {
    const keep = new Set(markers.map((m) => m.key))
    const before = this.markers.size
    for (const [key, marker] of this.markers) {
      if (!keep.has(key)) {
        marker.node.dispose(false, true)
        this.markers.delete(key)
      }
    }
    if (before === 0 && markers.length === 0) return // nothing shown, nothing to show
    for (const m of markers) {
      let marker = this.markers.get(m.key)
      if (!marker) {
        // A cone along +Y, turned below to point along the view direction.
        const node = CreateCylinder(`camera:${m.key}`, {
          diameterTop: 0, diameterBottom: 0.25, height: 0.4, tessellation: 12 }, this.scene)
        node.isPickable = false
        const material = new StandardMaterial(`camera:${m.key}`, this.scene)
        material.disableLighting = true
        node.material = material
        marker = { node, material }
        this.markers.set(m.key, marker)
      }
      marker.material.emissiveColor = Color3.FromHexString(m.color)
      const position = new Vector3(...m.position)
      const direction = new Vector3(...m.target).subtract(position)
      marker.node.position = position
      if (direction.lengthSquared() > 1e-12) {
        const rotation = new Quaternion()
        Quaternion.FromUnitVectorsToRef(Vector3.Up(), direction.normalize(), rotation)
        marker.node.rotationQuaternion = rotation
      }
    }
    this.invalidate()
  }

  /** Where a point of the scene shows on the canvas, in CSS pixels from its top left; null
   *  when it is behind the camera or past its far plane. */
  screenPoint(point: [number, number, number]): { x: number; y: number } | null {
    const width = this.engine.getRenderWidth()
    const height = this.engine.getRenderHeight()
    const transform = this.camera.getViewMatrix().multiply(this.camera.getProjectionMatrix())
    const projected = Vector3.Project(new Vector3(...point), Matrix.IdentityReadOnly, transform,
      this.camera.viewport.toGlobal(width, height))
    if (!(projected.z >= 0 && projected.z <= 1)) return null
    const canvas = this.engine.getRenderingCanvas()
    const scale = canvas && width > 0 ? canvas.clientWidth / width : 1
    return { x: projected.x * scale, y: projected.y * scale }
  }

  /** Look from where a collaborator looks (following them). */
  setCamera(view: CameraView): void {
    this.camera.alpha = view.alpha
    this.camera.beta = view.beta
    this.camera.radius = view.radius
    this.camera.setTarget(new Vector3(...view.target), false, false, true) // keep the angles just set
    this.invalidate()
  }

  private heatMaterial(): StandardMaterial {
    if (!this.heatMaterialCache) {
      const material = new StandardMaterial('heat', this.scene)
      material.diffuseColor = new Color3(1, 1, 1)
      material.specularColor = new Color3(0.1, 0.1, 0.1)
      material.emissiveColor = new Color3(0.25, 0.25, 0.25) // readable colours in the shade
      this.heatMaterialCache = material
    }
    return this.heatMaterialCache
  }

  private selectionHighlight(): HighlightLayer {
    if (this.highlight === null) {
      this.highlight = new HighlightLayer('selection', this.scene,
                                          { isStroke: true, blurHorizontalSize: 1, blurVerticalSize: 1 })
      this.highlight.innerGlow = false
    }
    return this.highlight
  }

  /** Outlines what is selected here and by others and puts the gizmo on this user's
   *  selection; draws again only when either changed (it is asked after every scene change,
   *  and each frame drawn costs a software renderer tens of milliseconds). */
  private refreshSelection(): void {
    this.syncModes()
    this.highlight?.removeAllMeshes()
    const outlined: string[] = []
    for (const [id, entry] of this.entries) {
      const color = id === this.selected ? this.ownColor : this.remoteSelections.get(id)
      if (!color) continue
      for (const mesh of entry.root.getChildMeshes()) {
        if (mesh instanceof Mesh && mesh.getTotalVertices() > 0) {
          this.selectionHighlight().addMesh(mesh, Color3.FromHexString(color))
          outlined.push(`${mesh.uniqueId}:${color}`)
        }
      }
    }
    const entry = this.selected ? this.entries.get(this.selected) : undefined
    const editable = entry && !this.readOnly && !entry.object.locked && entry.object.visible
    if (editable) this.gizmoManager().attachToNode(entry.root)
    else this.gizmos?.attachToNode(null)
    const shown = `${outlined.join(' ')}|${editable ? entry.root.uniqueId : ''}`
    if (shown !== this.selectionShown) this.invalidate()
    this.selectionShown = shown
  }

  /** What `refreshSelection` last outlined, and where the gizmo was. */
  private selectionShown = '|'

  /** The move/rotate/scale gizmos, made when first needed: they bring a scene of their own
   *  (a utility layer) and meshes, which cost the view's start about 20 ms before anything
   *  could be selected. */
  private gizmoManager(): GizmoManager {
    if (!this.gizmos) {
      this.gizmos = new GizmoManager(this.scene)
      this.gizmos.usePointerToAttachGizmos = false
      this.gizmos.clearGizmoOnEmptyPointerEvent = false
      this.applyGizmoMode()
    }
    return this.gizmos
  }

  private applyGizmoMode(): void {
    const gizmos = this.gizmos
    if (!gizmos) return // applied once they are made
    gizmos.positionGizmoEnabled = this.mode === 'move'
    gizmos.rotationGizmoEnabled = this.mode === 'rotate'
    gizmos.scaleGizmoEnabled = this.mode === 'scale'
    const { positionGizmo, rotationGizmo, scaleGizmo } = gizmos.gizmos
    for (const gizmo of [positionGizmo, rotationGizmo, scaleGizmo]) {
      if (!gizmo || this.wired.has(gizmo)) continue
      this.wired.add(gizmo)
      gizmo.onDragStartObservable.add(() => { this.dragging = true })
      gizmo.onDragObservable.add(() => this.emitTransform(false))
      gizmo.onDragEndObservable.add(() => {
        this.emitTransform(true)
        this.dragging = false
      })
    }
  }

  private emitTransform(final: boolean): void {
    const entry = this.selected ? this.entries.get(this.selected) : undefined
    if (!entry) return
    const now = performance.now()
    if (!final && now - this.lastLiveWrite < LIVE_WRITE_MS) return
    this.lastLiveWrite = now
    this.events.onTransform(entry.object.id, readTransform(entry.root), final)
  }

  // -- camera and rendering -------------------------------------------------------------

  /** Asks for the next few frames to be drawn (some effects settle over several frames). */
  invalidate(frames = 4): void {
    this.dirtyFrames = Math.max(this.dirtyFrames, frames)
  }

  private cameraMoving(): boolean {
    const c = this.camera
    return c.inertialAlphaOffset !== 0 || c.inertialBetaOffset !== 0 ||
      c.inertialRadiusOffset !== 0 || c.inertialPanningX !== 0 || c.inertialPanningY !== 0
  }

  /** Points the camera at everything visible. */
  frameAll(): void {
    let min: Vector3 | null = null
    let max: Vector3 | null = null
    for (const entry of this.entries.values()) {
      const b = entry.object.visible ? this.boundsOf(entry) : null
      if (!b) continue
      min = min ? Vector3.Minimize(min, b.min) : b.min.clone()
      max = max ? Vector3.Maximize(max, b.max) : b.max.clone()
    }
    if (!min || !max) {
      this.camera.setTarget(Vector3.Zero(), false, false, true)
      this.camera.radius = 6
      this.invalidate()
      return
    }
    const center = min.add(max).scale(0.5)
    const size = Math.max(max.subtract(min).length(), 0.5)
    this.camera.setTarget(center, false, false, true) // keep the angle of view
    this.camera.radius = size * 1.6
    this.invalidate()
  }

  /** Each object's footprint on the bed (its world box seen from above), for placing new
   *  objects beside them; an object whose mesh is not on screen yet counts as a unit square
   *  around its position. */
  footprints(): Map<string, Footprint> {
    const all = new Map<string, Footprint>()
    for (const [id, entry] of this.entries) {
      const b = this.boundsOf(entry)
      const [x, , z] = entry.object.transform.position
      all.set(id, b ? { minX: b.min.x, maxX: b.max.x, minZ: b.min.z, maxZ: b.max.z }
        : { minX: x - 0.5, maxX: x + 0.5, minZ: z - 0.5, maxZ: z + 0.5 })
    }
    return all
  }

  /** An object's box in world space, whether drawn as an instance or by its own nodes. */
  private boundsOf(entry: Entry): { min: Vector3; max: Vector3 } | null {
    const model = entry.instanced ? this.sources.get(entry.instanced)?.model : null
    if (model) {
      if (!model.corners.length) return null
      const world = entry.root.computeWorldMatrix(true)
      const points = model.corners.map((c) => Vector3.TransformCoordinates(c, world))
      return {
        min: points.reduce((a, p) => Vector3.Minimize(a, p)),
        max: points.reduce((a, p) => Vector3.Maximize(a, p)),
      }
    }
    if (!entry.root.getChildMeshes().length) return null
    return entry.root.getHierarchyBoundingVectors(true)
  }

  // -- statistics -----------------------------------------------------------------------

  /** Counts draw calls and frame times while on (see `onStats`). */
  setStats(on: boolean): void {
    if (on && !this.instrumentation) {
      this.instrumentation = new SceneInstrumentation(this.scene)
      this.frames.clear()
      this.statsStale = true
    } else if (!on && this.instrumentation) {
      this.instrumentation.dispose()
      this.instrumentation = null
    } else {
      return
    }
    this.invalidate()
  }

  private stats(): RenderStats {
    let lineIndices = 0
    const active = this.scene.getActiveMeshes()
    for (let i = 0; i < active.length; i++) {
      const mesh = active.data[i]
      if (mesh instanceof LinesMesh || mesh.metadata === FURNITURE) {
        lineIndices += mesh.getTotalIndices()
      }
    }
    let instanced = 0
    for (const entry of this.entries.values()) if (entry.instanced) instanced += 1
    return {
      objects: this.entries.size,
      instanced,
      drawCalls: this.instrumentation?.drawCallsCounter.current ?? 0,
      triangles: Math.round((this.scene.getActiveIndices() - lineIndices) / 3),
      ...this.frames.medians(),
      lastChangeDrawn: this.lastChangeDrawn,
    }
  }

  dispose(): void {
    this.instrumentation?.dispose()
    for (const type of ['pointerdown', 'pointermove', 'pointerup', 'wheel', 'keydown']) {
      this.canvas.removeEventListener(type, this.onInput)
    }
    this.scene.onPointerObservable.remove(this.pointerObserver)
    this.resizeObserver.disconnect()
    this.gizmos?.dispose()
    this.engine.stopRenderLoop()
    this.scene.dispose()
    this.engine.dispose()
  }

  private buildGridAndAxes(): void {
    // Lines are cut into unit segments: some renderers (SwiftShader) drop a whole segment
    // when one end is behind the camera, instead of clipping it.
    // The grid, the axes and the bed's lines are all opaque lines coloured per vertex: one
    // shader and one pipeline for the three (a uniform colour, and alpha blending, made
    // three), each of which a software renderer compiles at its first draw while the page
    // waits for the first mesh.
    const half = 10
    const lines: Vector3[][] = []
    const colors: Color4[][] = []
    const gridColor = new Color4(0.3, 0.32, 0.36, 1)
    for (let i = -half; i <= half; i++) {
      for (let j = -half; j < half; j++) {
        if (i === 0 && j >= 0) continue // the positive axes are drawn in colour below
        lines.push([new Vector3(i, 0, j), new Vector3(i, 0, j + 1)])
        lines.push([new Vector3(j, 0, i), new Vector3(j + 1, 0, i)])
        colors.push([gridColor, gridColor], [gridColor, gridColor])
      }
    }
    const grid = CreateLineSystem('grid', { lines, colors, useVertexAlpha: false }, this.scene)
    settle(grid)

    const lift = 0.002 // above the grid, so the axes are not hidden by it
    const axes: [Vector3, number, Color4][] = [
      [new Vector3(1, 0, 0), half, new Color4(0.95, 0.35, 0.35, 1)],
      [new Vector3(0, 1, 0), 2, new Color4(0.4, 0.9, 0.4, 1)],
      [new Vector3(0, 0, 1), half, new Color4(0.4, 0.6, 1, 1)],
    ]
    const axisLines: Vector3[][] = []
    const axisColors: Color4[][] = []
    for (const [direction, length, color] of axes) {
      for (let k = 0; k < length; k++) {
        const from = direction.scale(k).addInPlaceFromFloats(0, lift, 0)
        axisLines.push([from, from.add(direction)])
        axisColors.push([color, color])
      }
    }
    const axis = CreateLineSystem(
      'axes', { lines: axisLines, colors: axisColors, useVertexAlpha: false }, this.scene)
    settle(axis)
  }
}

/** Whether WebGL here is a software renderer (SwiftShader, as in Chromium without a usable
 *  GPU; Mesa's llvmpipe or softpipe). Asked of a throwaway context, since a canvas keeps the
 *  antialiasing its first context was made with. bench.workspace, SwiftShader, 2 cores
 *  shared: without multisampling the frame time with 100 objects was 69 ms against 121 ms,
 *  with 1,000 134 ms against 255 ms (medians of 3 runs each, same build otherwise). The
 *  answer is kept for the tab (its renderer does not change): the throwaway context cost
 *  30-35 ms of the page's thread at every opening of a workspace (a Chromium profile). */
function drawsOnCpu(): boolean {
  const known = remembered(SOFTWARE_RENDERER)
  if (known !== null) return known === 'yes'
  const gl = document.createElement('canvas').getContext('webgl2')
  if (!gl) return false
  const info = gl.getExtension('WEBGL_debug_renderer_info') // RENDERER alone says 'WebKit WebGL'
  const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER))
  gl.getExtension('WEBGL_lose_context')?.loseContext()
  const software = /swiftshader|llvmpipe|softpipe|software/i.test(renderer)
  remember(SOFTWARE_RENDERER, software ? 'yes' : 'no')
  return software
}

const SOFTWARE_RENDERER = 'orfeas.softwareRenderer'

/** A value kept in the tab's session storage, or null (none, or no storage allowed). */
function remembered(key: string): string | null {
  try {
    return window.sessionStorage.getItem(key)
  } catch {
    return null
  }
}

function remember(key: string, value: string): void {
  try {
    window.sessionStorage.setItem(key, value)
  } catch {
    // storage refused (a private mode, a full quota): asked again next time
  }
}

/** Resolves once every mesh can be drawn (materials compiled), or after `timeoutMs`. */
async function whenReady(
  meshes: AbstractMesh[], ready = (m: AbstractMesh) => m.isReady(true), timeoutMs = 20_000,
): Promise<void> {
  const until = performance.now() + timeoutMs
  while (performance.now() < until) {
    if (meshes.every((m) => m.getTotalVertices() === 0 || ready(m))) return
    // About a frame: a compile that ends just after a check waits no longer than that.
    await new Promise((resolve) => setTimeout(resolve, 16))
  }
}

/** The centre of a loaded (and stood upright) GLB's bounding box. */
function centreOf(container: AssetContainer): Vector3 {
  let min: Vector3 | null = null
  let max: Vector3 | null = null
  for (const mesh of container.meshes) {
    if (mesh.getTotalVertices() === 0) continue
    const box = mesh.getBoundingInfo()
    box.update(mesh.computeWorldMatrix(true))
    min = min ? Vector3.Minimize(min, box.boundingBox.minimumWorld)
      : box.boundingBox.minimumWorld.clone()
    max = max ? Vector3.Maximize(max, box.boundingBox.maximumWorld)
      : box.boundingBox.maximumWorld.clone()
  }
  return min && max ? min.add(max).scale(0.5) : Vector3.Zero()
}

function applyTransform(node: TransformNode, t: Transform): void {
  node.position.set(...t.position)
  const q = node.rotationQuaternion ?? new Quaternion()
  q.set(...t.rotation)
  node.rotationQuaternion = q
  node.scaling.set(...t.scale)
}

function round(v: number): number {
  return Math.round(v * 1e5) / 1e5
}

function readTransform(node: TransformNode): Transform {
  const q = node.rotationQuaternion ?? Quaternion.FromEulerVector(node.rotation)
  return {
    position: [round(node.position.x), round(node.position.y), round(node.position.z)],
    rotation: [round(q.x), round(q.y), round(q.z), round(q.w)],
    scale: [round(node.scaling.x), round(node.scaling.y), round(node.scaling.z)],
  }
}
