import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import { api, errorMessage, type Project, type SceneDiff, type User } from '../api'
import { cameraPosition, withDrags, type CameraView, type SceneSession } from '../collab'
import { AppHeader } from '../components/AppHeader'
import { ErrorMessage } from '../components/ErrorMessage'
import { decodeFaceMaps } from '../faceMaps'
import {
  addMeshObject, duplicateObject, writeField, writeTransform, type Transform,
} from '../scene'
import type { GizmoMode, HeatMap, MeshState } from '../viewport/Viewport'
import { ConnectionBanner } from './ConnectionBanner'
import { GenerationPanel } from './GenerationPanel'
import { HelpDialog } from './HelpDialog'
import { HistoryPanel, type Preview } from './HistoryPanel'
import { ImportMesh, type UploadedMesh } from './ImportMesh'
import { MeshPanel, fetchFaceMaps, type HeatMapKind } from './MeshPanel'
import type { MaterialPreview } from '../materialPreview'
import { useCollabState, useDocChanges, usePeers, useSceneObjects } from './hooks'
import { Outliner } from './Outliner'
import { PresenceBar } from './PresenceBar'
import { PropertiesPanel } from './PropertiesPanel'
import { actionFor, isTyping, type Action } from './shortcuts'
import { Toolbar } from './Toolbar'
import { ViewportView } from './ViewportView'

interface Props {
  project: Project
  session: SceneSession
  user: User
  color: string
  onSignOut: () => void
}

const DIFF_ADDED = '#4caf50'
const DIFF_CHANGED = '#ff9800'

type Tab = 'properties' | 'mesh' | 'generate' | 'history'
const TABS: { id: Tab; label: string }[] = [
  { id: 'properties', label: 'Properties' },
  { id: 'mesh', label: 'Mesh' },
  { id: 'generate', label: 'Generate' },
  { id: 'history', label: 'History' },
]

export function WorkspaceView({ project, session, user, color, onSignOut }: Props) {
  const collab = useCollabState(session)
  const liveObjects = useSceneObjects(session)
  const peers = usePeers(session)
  const [selection, setSelection] = useState<string | null>(null)
  const [mode, setMode] = useState<GizmoMode>('move')
  const [wireframe, setWireframe] = useState(false)
  const [flat, setFlat] = useState(false)
  const [statsOn, setStatsOn] = useState(false)
  const [heatKind, setHeatKind] = useState<HeatMapKind>('none')
  const [heatMap, setHeatMap] = useState<HeatMap | null>(null)
  const [materialPreview, setMaterialPreview] = useState<MaterialPreview | null>(null)
  const [following, setFollowing] = useState<number | null>(null)
  const [frameRequest, setFrameRequest] = useState(0)
  const [meshStates, setMeshStates] = useState<Record<string, MeshState>>({})
  const [preview, setPreview] = useState<Preview | null>(null)
  const [tab, setTab] = useState<Tab>('generate')
  const [help, setHelp] = useState(false)
  const [message, setMessage] = useState<string | null>(null)
  const [changes, setChanges] = useState(0)

  const role = project.members.find((m) => m.user_id === user.id)?.role
    ?? (user.is_admin ? 'owner' : 'viewer')
  const canEdit = role !== 'viewer'
  const readOnly = !canEdit || preview !== null || collab.status === 'refused'
  // Collaborators' gizmo drags show live (through awareness); the document gets the result.
  const objects = useMemo(
    () => (preview ? preview.objects : withDrags(liveObjects, peers)),
    [preview, liveObjects, peers],
  )
  const selected = objects.find((o) => o.id === selection) ?? null
  const names = useMemo(
    () => new Map(project.members.map((m) => [m.user_id, m.username ?? m.user_id])),
    [project.members],
  )
  const [diff, setDiff] = useState<SceneDiff | null>(null)
  // Outlines: collaborators' selections, and a version comparison (added green, changed amber).
  const remoteSelections = useMemo(() => {
    const map = new Map<string, string>()
    if (diff) {
      for (const id of diff.added) map.set(id, DIFF_ADDED)
      for (const id of Object.keys(diff.changed)) map.set(id, DIFF_CHANGED)
    }
    for (const p of peers) if (!p.self && p.selection) map.set(p.selection, p.user.color)
    return map
  }, [peers, diff])

  const cameraMarkers = useMemo(() => peers
    .filter((p) => !p.self && p.camera && p.clientId !== following)
    .map((p) => ({ key: String(p.clientId), color: p.user.color,
                   position: cameraPosition(p.camera!), target: p.camera!.target })), [peers, following])
  const followed = peers.find((p) => p.clientId === following)?.camera ?? null
  useEffect(() => {
    // A followed collaborator who left ends the following.
    if (following !== null && !peers.some((p) => p.clientId === following)) setFollowing(null)
  }, [peers, following])
  const onCamera = useCallback((view: CameraView) => session.setCamera(view), [session])
  const onTakeCamera = useCallback(() => setFollowing(null), [])

  useEffect(() => session.onNotice((n) => setMessage(n.detail)), [session])
  useEffect(() => { session.setSelection(selection) }, [session, selection])
  useDocChanges(session.doc, useCallback(() => setChanges((c) => c + 1), []))

  const onTransform = useCallback((id: string, t: Transform) => {
    if (!readOnly) writeTransform(session.doc, id, t)
  }, [session, readOnly])

  // A gizmo drag is shared live through awareness and written once, when released, so that
  // the log holds one change per drag and undo takes back the whole drag.
  const onGizmo = useCallback((id: string, t: Transform, final: boolean) => {
    if (readOnly) return
    if (final) {
      session.setDrag(null)
      writeTransform(session.doc, id, t)
    } else {
      session.setDrag({ id, transform: t })
    }
  }, [session, readOnly])

  const onToggle = useCallback((field: 'visible' | 'locked', value: boolean) => {
    if (selection && !readOnly) writeField(session.doc, selection, field, value)
  }, [session, selection, readOnly])

  const duplicate = useCallback(() => {
    if (!selection || readOnly) return
    const id = crypto.randomUUID()
    if (duplicateObject(session.doc, selection, id, user.id)) setSelection(id)
  }, [session, selection, readOnly, user.id])

  // An imported mesh is framed once it is on screen (its size is only known then).
  const frameWhenShown = useRef<string | null>(null)
  const onImported = useCallback((mesh: UploadedMesh) => {
    const id = crypto.randomUUID()
    if (addMeshObject(session.doc, id, mesh, user.id)) {
      setSelection(id)
      frameWhenShown.current = id
    }
  }, [session, user.id])

  // The heat map follows the selection: another object, or none, clears it.
  useEffect(() => {
    setHeatKind('none')
    setHeatMap(null)
  }, [selection])

  const onHeatMap = useCallback(async (kind: HeatMapKind, meshId: string | null) => {
    setHeatKind(kind)
    if (kind === 'none' || !meshId || !selection) {
      setHeatMap(null)
      return
    }
    try {
      const maps = decodeFaceMaps(await fetchFaceMaps(meshId))
      const values = maps.get(kind)
      if (!values) throw new Error(`the analysis has no ${kind} map`)
      setHeatMap({ objectId: selection, kind, values, limit: 0.8 })
    } catch (e) {
      setMessage(errorMessage(e))
      setHeatKind('none')
    }
  }, [selection])

  const onHeatMapShown = useCallback((shown: boolean) => {
    if (shown) return
    setMessage('The heat map does not fit the mesh on screen (analyse the mesh that is shown).')
    setHeatKind('none')
    setHeatMap(null)
  }, [])

  const onMeshState = useCallback((id: string, state: MeshState) => {
    setMeshStates((all) => ({ ...all, [id]: state }))
    if (id === frameWhenShown.current && state.shown && !state.loading) {
      frameWhenShown.current = null
      setFrameRequest((n) => n + 1)
    }
  }, [])

  const undoRedo = useCallback(async (redo: boolean) => {
    if (!canEdit || preview) return
    try {
      await (redo ? api.redo(project.id) : api.undo(project.id))
    } catch (e) {
      setMessage(errorMessage(e))
    }
  }, [canEdit, preview, project.id])

  const run = useCallback((action: Action) => {
    switch (action) {
      case 'help': setHelp(true); break
      case 'undo': void undoRedo(false); break
      case 'redo': void undoRedo(true); break
      case 'move': setMode('move'); break
      case 'rotate': setMode('rotate'); break
      case 'scale': setMode('scale'); break
      case 'frame': setFrameRequest((n) => n + 1); break
      case 'wireframe': setWireframe((w) => !w); break
      case 'flat': setFlat((f) => !f); break
      case 'stats': setStatsOn((on) => !on); break
      case 'duplicate': duplicate(); break
      case 'deselect': setSelection(null); break
      case 'hide': if (selected) onToggle('visible', !selected.visible); break
      case 'lock': if (selected) onToggle('locked', !selected.locked); break
    }
  }, [undoRedo, selected, onToggle, duplicate])

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      if (help || isTyping(e.target)) return
      const action = actionFor(e)
      if (!action) return
      e.preventDefault()
      run(action)
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [run, help])

  return (
    <div className="workspace">
      <AppHeader user={user} onSignOut={onSignOut}>
        <h1 className="project-title" data-testid="project-title">{project.name}</h1>
        <span className={`role role-${role}`}>{role}</span>
        <PresenceBar peers={peers} following={following} onFollow={setFollowing} />
      </AppHeader>
      <ConnectionBanner state={collab} />
      {preview && (
        <div className="banner banner-info" role="status" data-testid="time-travel-banner">
          Viewing the scene at log position {preview.position} — read-only.
          <button type="button" className="small" onClick={() => setPreview(null)}>Back to live</button>
        </div>
      )}
      {message && <ErrorMessage message={message} onDismiss={() => setMessage(null)} />}
      <Toolbar mode={mode} wireframe={wireframe} flat={flat} stats={statsOn} canEdit={canEdit && !preview}
        canDuplicate={!readOnly && selected !== null}
        onMode={setMode} onWireframe={setWireframe} onFlat={setFlat} onStats={setStatsOn}
        onDuplicate={duplicate} onFrame={() => run('frame')}
        onUndo={() => run('undo')} onRedo={() => run('redo')} onHelp={() => setHelp(true)} />
      <div className="workspace-body">
        <Outliner objects={objects} selection={selection} meshStates={meshStates}
          remoteSelections={remoteSelections} onSelect={setSelection} />
        <div className="viewport">
          <ViewportView objects={objects} readOnly={readOnly} selection={selection}
            ownColor={color} remoteSelections={remoteSelections} mode={mode}
            wireframe={wireframe} flat={flat} stats={statsOn}
            heatMap={heatMap} materialPreview={materialPreview} onHeatMapShown={onHeatMapShown}
            cameraMarkers={cameraMarkers} follow={followed} onCamera={onCamera}
            onTakeCamera={onTakeCamera}
            frameRequest={frameRequest} onPick={setSelection}
            onTransform={onGizmo} onMeshState={onMeshState} />
        </div>
        <aside className="side-panel">
          <div className="tabs" role="tablist" aria-label="Panels">
            {TABS.map((t) => (
              <button key={t.id} type="button" role="tab" id={`tab-${t.id}`}
                aria-selected={tab === t.id} aria-controls={`panel-${t.id}`}
                onClick={() => setTab(t.id)}>
                {t.label}
              </button>
            ))}
          </div>
          {TABS.map((t) => (
            <div key={t.id} className="tab-panel" role="tabpanel" id={`panel-${t.id}`}
              aria-labelledby={`tab-${t.id}`} hidden={tab !== t.id}>
              {t.id === 'properties' && (
                <PropertiesPanel object={selected}
                  mesh={selected ? meshStates[selected.id] : undefined} readOnly={readOnly}
                  onTransform={(tr) => selected && onTransform(selected.id, tr)}
                  onToggle={onToggle} />
              )}
              {t.id === 'mesh' && (
                <MeshPanel object={preview ? null : selected} canEdit={canEdit && !preview}
                  heatMap={heatKind} onHeatMap={(k, id) => void onHeatMap(k, id)}
                  onMaterialPreview={setMaterialPreview} />
              )}
              {t.id === 'generate' && (
                <>
                  <GenerationPanel projectId={project.id} canEdit={canEdit} />
                  <ImportMesh projectId={project.id} canEdit={!readOnly} onImported={onImported} />
                </>
              )}
              {t.id === 'history' && (
                <HistoryPanel projectId={project.id} canEdit={canEdit} names={names}
                  changes={changes} preview={preview} onPreview={setPreview} onDiff={setDiff} />
              )}
            </div>
          ))}
        </aside>
      </div>
      <HelpDialog open={help} onClose={() => setHelp(false)} />
    </div>
  )
}

