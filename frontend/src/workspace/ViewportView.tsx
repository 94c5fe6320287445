import { useEffect, useRef } from 'react'
import type { SceneObject, Transform } from '../scene'
import { Viewport, type GizmoMode, type HeatMap, type MeshState } from '../viewport/Viewport'

interface Props {
  objects: SceneObject[]
  readOnly: boolean
  selection: string | null
  ownColor: string
  remoteSelections: Map<string, string>
  mode: GizmoMode
  wireframe: boolean
  flat: boolean
  heatMap: HeatMap | null
  /** Whether the heat map could be shown (false: the map does not fit the mesh shown). */
  onHeatMapShown: (shown: boolean) => void
  /** Bumped to ask for a frame-all. */
  frameRequest: number
  onPick: (id: string | null) => void
  onTransform: (id: string, transform: Transform, final: boolean) => void
  onMeshState: (id: string, state: MeshState) => void
}

export function ViewportView(props: Props) {
  const canvasRef = useRef<HTMLCanvasElement>(null)
  const viewportRef = useRef<Viewport | null>(null)
  const handlers = useRef(props)
  handlers.current = props
  const { objects, readOnly, selection, ownColor, remoteSelections, mode, wireframe, flat,
    heatMap, frameRequest } = props

  useEffect(() => {
    const canvas = canvasRef.current
    if (!canvas) return
    const viewport = new Viewport(canvas, {
      onPick: (id) => handlers.current.onPick(id),
      onTransform: (id, t, final) => handlers.current.onTransform(id, t, final),
      onMeshState: (id, s) => handlers.current.onMeshState(id, s),
    })
    viewportRef.current = viewport
    return () => {
      viewportRef.current = null
      viewport.dispose()
    }
  }, [])

  useEffect(() => { viewportRef.current?.setObjects(objects, readOnly) }, [objects, readOnly])
  useEffect(() => { viewportRef.current?.setSelection(selection, ownColor) }, [selection, ownColor])
  useEffect(() => { viewportRef.current?.setRemoteSelections(remoteSelections) }, [remoteSelections])
  useEffect(() => { viewportRef.current?.setGizmoMode(mode) }, [mode])
  useEffect(() => { viewportRef.current?.setWireframe(wireframe) }, [wireframe])
  useEffect(() => { viewportRef.current?.setFlatShading(flat) }, [flat])
  useEffect(() => {
    const viewport = viewportRef.current
    if (viewport) handlers.current.onHeatMapShown(viewport.setHeatMap(heatMap))
  }, [heatMap])
  useEffect(() => {
    if (frameRequest > 0) viewportRef.current?.frameAll()
  }, [frameRequest])

  return (
    <canvas ref={canvasRef} className="viewport-canvas" tabIndex={0} data-testid="viewport"
      aria-label="3D viewport: drag to orbit, right-drag to pan, wheel to zoom" />
  )
}
