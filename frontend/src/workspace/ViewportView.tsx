import { useEffect, useLayoutEffect, useRef, useState } from 'react'
import type { CameraView } from '../collab'
import type { SceneObject, Transform } from '../scene'
import type { MaterialPreview } from '../materialPreview'
import { prefetchMeshes } from '../viewport/prefetch'
import type { RenderStats } from '../viewport/stats'
import { HeatLegend } from './HeatLegend'
import { RenderStatsOverlay } from './RenderStatsOverlay'
import type {
  CameraMarker, GizmoMode, HeatMap, MeshState, Viewport,
} from '../viewport/Viewport'

// The view (Babylon.js, most of the workspace's code) is a chunk of its own, asked for as
// soon as the workspace's code runs: it downloads and compiles while the project, the scene
// connection and the panels come, instead of before all of them.
const viewportModule = import('../viewport/Viewport')

/** `?instancing=off` in the page's address draws one copy per object instead of thin
 *  instances: a diagnostic, and the peer the frame-time benchmark compares against. */
function instancingWanted(): boolean {
  return new URLSearchParams(window.location.search).get('instancing') !== 'off'
}

interface CameraLabel {
  key: string
  name: string
  color: string
  x: number
  y: number
}

function cameraLabels(viewport: Viewport, markers: CameraMarker[]): CameraLabel[] {
  const labels: CameraLabel[] = []
  for (const m of markers) {
    const at = m.name ? viewport.screenPoint(m.position) : null
    if (at && m.name) labels.push({ key: m.key, name: m.name, color: m.color, ...at })
  }
  return labels
}

interface Props {
  objects: SceneObject[]
  readOnly: boolean
  selection: string | null
  ownColor: string
  remoteSelections: Map<string, string>
  mode: GizmoMode
  wireframe: boolean
  flat: boolean
  /** Count draw calls and frame times, shown over the view. */
  stats: boolean
  heatMap: HeatMap | null
  /** A material shown on an object before it is applied, or null. */
  materialPreview: MaterialPreview | null
  /** Whether the heat map could be shown (false: the map does not fit the mesh shown). */
  onHeatMapShown: (shown: boolean) => void
  /** Bumped to ask for a frame-all. */
  frameRequest: number
  onPick: (id: string | null, additive: boolean) => void
  /** The viewport once made (null once gone), for what is asked of it rather than given. */
  onViewport?: (viewport: Viewport | null) => void
  onTransform: (id: string, transform: Transform, final: boolean) => void
  onMeshState: (id: string, state: MeshState) => void
  cameraMarkers: CameraMarker[]
  /** A collaborator's view to follow, or null. */
  follow: CameraView | null
  onCamera: (view: CameraView) => void
  /** The user took the camera (dragged or zoomed): following stops. */
  onTakeCamera: () => void
}

export function ViewportView(props: Props) {
  const canvasRef = useRef<HTMLCanvasElement>(null)
  const viewportRef = useRef<Viewport | null>(null)
  // Set once the view's chunk has come: the effects below give it what it should show then.
  const [viewport, setViewport] = useState<Viewport | null>(null)
  // Kept here, not in the workspace: a few updates a second re-render only this view.
  const [renderStats, setRenderStats] = useState<RenderStats | null>(null)
  // Collaborators' names over their camera markers, placed again whenever either camera moves.
  const [labels, setLabels] = useState<CameraLabel[]>([])
  const placeLabels = useRef(() => {})
  placeLabels.current = () => {
    const viewport = viewportRef.current
    const next = viewport ? cameraLabels(viewport, handlers.current.cameraMarkers) : []
    // Asked on every frame of an orbit: with no one to label, nothing to render again.
    setLabels((shown) => (shown.length === 0 && next.length === 0 ? shown : next))
  }
  const handlers = useRef(props)
  handlers.current = props
  const { objects, readOnly, selection, ownColor, remoteSelections, mode, wireframe, flat,
    heatMap, frameRequest, cameraMarkers, follow, stats, materialPreview } = props

  useEffect(() => {
    const canvas = canvasRef.current
    if (!canvas) return
    let made: Viewport | null = null
    let gone = false
    const take = (): void => handlers.current.onTakeCamera()
    void viewportModule.then(({ Viewport }) => {
      if (gone) return
      made = makeViewport(Viewport, canvas)
      canvas.addEventListener('pointerdown', take)
      canvas.addEventListener('wheel', take, { passive: true })
      viewportRef.current = made
      setViewport(made)
      handlers.current.onViewport?.(made)
    })
    return () => {
      gone = true
      if (!made) return
      handlers.current.onViewport?.(null)
      canvas.removeEventListener('pointerdown', take)
      canvas.removeEventListener('wheel', take)
      viewportRef.current = null
      made.dispose()
    }
  }, [])

  function makeViewport(View: typeof Viewport, canvas: HTMLCanvasElement): Viewport {
    return new View(canvas, {
      onPick: (id, additive) => handlers.current.onPick(id, additive),
      onTransform: (id, t, final) => handlers.current.onTransform(id, t, final),
      onMeshState: (id, s) => handlers.current.onMeshState(id, s),
      onCamera: (view) => {
        // Where the camera looks, readable from the page (end-to-end tests aim clicks by it).
        canvas.dataset.camera = JSON.stringify(view)
        handlers.current.onCamera(view)
        placeLabels.current()
      },
      onStats: (s) => setRenderStats(s),
    }, { instancing: instancingWanted() })
  }

  // Before the browser paints: a change (a collaborator's edit) reaches the view, and so its
  // next frame, without waiting for the paint that passive effects follow. Before the view is
  // made, the first meshes' files are asked for meanwhile (see `prefetchMeshes`).
  useLayoutEffect(() => {
    if (viewport) viewport.setObjects(objects, readOnly)
    else prefetchMeshes(objects)
  }, [viewport, objects, readOnly])
  useEffect(() => { viewport?.setSelection(selection, ownColor) }, [viewport, selection, ownColor])
  useEffect(() => { viewport?.setRemoteSelections(remoteSelections) }, [viewport, remoteSelections])
  useEffect(() => { viewport?.setGizmoMode(mode) }, [viewport, mode])
  useEffect(() => { viewport?.setWireframe(wireframe) }, [viewport, wireframe])
  useEffect(() => { viewport?.setFlatShading(flat) }, [viewport, flat])
  useEffect(() => {
    viewport?.setStats(stats)
    if (!stats) setRenderStats(null)
  }, [viewport, stats])
  useEffect(() => {
    if (viewport) handlers.current.onHeatMapShown(viewport.setHeatMap(heatMap))
  }, [viewport, heatMap])
  useEffect(() => {
    viewport?.setMaterialPreview(materialPreview)
  }, [viewport, materialPreview])
  useEffect(() => {
    if (frameRequest > 0) viewport?.frameAll()
  }, [viewport, frameRequest])
  useEffect(() => {
    viewport?.setCameraMarkers(cameraMarkers)
    placeLabels.current()
  }, [viewport, cameraMarkers])
  useEffect(() => {
    if (follow) viewport?.setCamera(follow)
  }, [viewport, follow])

  return (
    <>
      <canvas ref={canvasRef} className="viewport-canvas" tabIndex={0} data-testid="viewport"
        aria-label="3D viewport: drag to orbit, right-drag to pan, wheel to zoom" />
      {stats && <RenderStatsOverlay stats={renderStats} />}
      {heatMap && <HeatLegend map={heatMap} />}
      {labels.map((l) => (
        <span key={l.key} className="camera-label" data-testid="camera-label"
          style={{ left: l.x, top: l.y, borderColor: l.color }}>
          {l.name}
        </span>
      ))}
    </>
  )
}
