import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import { api, errorMessage, type Project, type SceneDiff, type User } from '../api'
import { cameraPosition, withDrags, type CameraView, type SceneSession } from '../collab'
import { AssistantPanel } from '../assistant/AssistantPanel'
import { AppHeader } from '../components/AppHeader'
import { ErrorMessage } from '../components/ErrorMessage'
import { MembersPanel } from '../components/MembersPanel'
import { decodeFaceMaps } from '../faceMaps'
import { copySpot, freeSpot } from '../placement'
import {
  addMeshObject, deleteObjects, duplicateObject, writeField, writeTransform, type Transform,
} from '../scene'
import type { GizmoMode, HeatMap, MeshState, Viewport } from '../viewport/Viewport'
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

type Tab = 'properties' | 'mesh' | 'generate' | 'assistant' | 'history' | 'members'
const TABS: { id: Tab; label: string }[] = [
  { id: 'properties', label: 'Properties' },
  { id: 'mesh', label: 'Mesh' },
  { id: 'generate', label: 'Generate' },
  { id: 'assistant', label: 'Assistant' },
  { id: 'history', label: 'History' },
  { id: 'members', label: 'Members' },
]

export function WorkspaceView({ project, session, user, color, onSignOut }: Props) {
  const collab = useCollabState(session)
  const liveObjects = useSceneObjects(session)
  const peers = usePeers(session)
  const [selection, setSelection] = useState<string | null>(null)
  // Objects selected besides `selection` (Shift- or Ctrl-click); the gizmo and panels follow
  // `selection`, Delete takes them all.
  const [alsoSelected, setAlsoSelected] = useState<string[]>([])
  const viewport = useRef<Viewport | null>(null)
  const onViewport = useCallback((v: Viewport | null) => { viewport.current = v }, [])
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
  const selectedIds = useMemo(
    () => (selection ? [selection, ...alsoSelected.filter((id) => id !== selection)] : alsoSelected)
      .filter((id) => objects.some((o) => o.id === id)),
    [selection, alsoSelected, objects])
  // A click selects one object; with Shift or Ctrl it adds the object or takes it out.
  const select = useCallback((id: string | null, additive = false) => {
    if (!additive || !id) {
      setSelection(id)
      setAlsoSelected([])
      return
    }
    const all = selection ? [selection, ...alsoSelected] : [...alsoSelected]
    const next = all.includes(id) ? all.filter((x) => x !== id) : [...all, id]
    setSelection(next.length ? next[next.length - 1] : null)
    setAlsoSelected(next.slice(0, -1))
  }, [selection, alsoSelected])
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
  // The viewport outlines the rest of one's own selection in one's own colour.
  const outlines = useMemo(() => {
    if (!alsoSelected.length) return remoteSelections
    const map = new Map(remoteSelections)
    for (const id of alsoSelected) if (id !== selection) map.set(id, color)
    return map
  }, [remoteSelections, alsoSelected, selection, color])

  const cameraMarkers = useMemo(() => peers
    .filter((p) => !p.self && p.camera && p.clientId !== following)
    .map((p) => ({ key: String(p.clientId), color: p.user.color, name: p.user.name,
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

  // A copy lands one of its own widths beside its source (further while that is taken).
  const duplicate = useCallback(() => {
    if (!selection || readOnly) return
    const id = crypto.randomUUID()
    const footprints = viewport.current?.footprints() ?? new Map()
    const source = footprints.get(selection)
    const offset = source ? copySpot(source, [...footprints.values()]) : undefined
    if (duplicateObject(session.doc, selection, id, user.id, offset)) {
      select(id)
      setMessage(null)
    }
  }, [session, selection, readOnly, user.id, select])

  const deletion = !canEdit ? 'Viewers cannot delete objects.'
    : preview ? 'Go back to live to delete objects.' : readOnly ? 'Not connected to the scene.' : null
  const remove = useCallback(() => {
    if (!selectedIds.length) return
    if (deletion) {
      setMessage(deletion)
      return
    }
    const { deleted, locked } = deleteObjects(session.doc, selectedIds)
    const keep = selectedIds.filter((id) => !deleted.includes(id))
    setSelection(keep.length ? keep[keep.length - 1] : null)
    setAlsoSelected(keep.slice(0, -1))
    if (locked.length) {
      const lockedNames = locked.map((id) => objects.find((o) => o.id === id)?.name ?? id)
      setMessage(`Not deleted: ${lockedNames.map((n) => `"${n}"`).join(', ')} ` +
        `${locked.length > 1 ? 'are' : 'is'} locked. Unlock (L) to delete.`)
    } else {
      setMessage(null)
    }
  }, [session, selectedIds, deletion, objects])

  // Objects this user made in this session (imports, generations) are moved to a free spot of
  // the bed once their mesh is on screen (their size is only known then), if they overlap
  // another; an imported mesh is then framed.
  const frameWhenShown = useRef<string | null>(null)
  const placeWhenShown = useRef(new Set<string>())
  const onImported = useCallback((mesh: UploadedMesh) => {
    const id = crypto.randomUUID()
    const footprints = viewport.current?.footprints() ?? new Map()
    const unit = { minX: -0.5, maxX: 0.5, minZ: -0.5, maxZ: 0.5 }
    const [x, z] = freeSpot(unit, [...footprints.values()])
    if (addMeshObject(session.doc, id, mesh, user.id, [x, 0, z])) {
      select(id)
      setMessage(null)
      frameWhenShown.current = id
      placeWhenShown.current.add(id)
    }
  }, [session, user.id, select])

  // What arrived since the scene was first synced: one's own generations get placed; others'
  // additions are announced while the scene already shows something (the camera stays put
  // while the user works; an empty scene is framed instead, below).
  const known = useRef<Set<string> | null>(null)
  const [arrivals, setArrivals] = useState<string[]>([])
  useEffect(() => {
    if (!collab.synced) return
    if (!known.current) {
      known.current = new Set(liveObjects.map((o) => o.id))
      return
    }
    const seen = known.current
    const fresh = liveObjects.filter((o) => !seen.has(o.id))
    for (const o of fresh) {
      seen.add(o.id)
      if (o.createdBy === user.id) placeWhenShown.current.add(o.id)
    }
    const byOthers = fresh.filter((o) => o.createdBy !== user.id)
    if (byOthers.length && seen.size > byOthers.length) {
      setArrivals((a) => [...a, ...byOthers.map((o) =>
        `${names.get(o.createdBy ?? '') ?? 'someone'} added ${o.name}`)])
    }
  }, [collab.synced, liveObjects, user.id, names])

  const frame = useCallback(() => {
    setArrivals([])
    setFrameRequest((n) => n + 1)
  }, [])

  const place = useCallback((id: string) => {
    const footprints = viewport.current?.footprints()
    const own = footprints?.get(id)
    const object = liveObjects.find((o) => o.id === id)
    if (!footprints || !own || !object || readOnly) return
    footprints.delete(id)
    const [dx, dz] = freeSpot(own, [...footprints.values()])
    if (dx === 0 && dz === 0) return
    const [x, y, z] = object.transform.position
    writeTransform(session.doc, id, { ...object.transform, position: [x + dx, y, z + dz] })
  }, [liveObjects, readOnly, session])

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
    if (state.shown && placeWhenShown.current.delete(id)) place(id)
    if (id === frameWhenShown.current && state.shown && !state.loading) {
      frameWhenShown.current = null
      frame()
    }
  }, [place, frame])

  // Framing: when the project opens (once the meshes there then are on screen), after time
  // travel (likewise), and whenever the view goes from nothing shown to something (a
  // collaborator's first import into an empty scene).
  const [frameOnLoad, setFrameOnLoad] = useState<Set<string> | null>(null)
  const openFramed = useRef(false)
  useEffect(() => {
    if (!collab.synced || openFramed.current) return
    openFramed.current = true // the objects of the first sync are the ones to wait for
    setFrameOnLoad(new Set(liveObjects.map((o) => o.id)))
  }, [collab.synced, liveObjects])
  const previewPosition = preview?.position ?? null
  const framedPosition = useRef<number | null>(null)
  useEffect(() => {
    if (previewPosition === framedPosition.current) return
    framedPosition.current = previewPosition // time travel (or back to live) frames what it shows
    setFrameOnLoad(new Set(objects.map((o) => o.id)))
  }, [previewPosition, objects])
  // A mesh state outlives its object no longer: one that comes back (time travel, undo)
  // counts as loading again, not as still on screen.
  useEffect(() => {
    const present = new Set(objects.map((o) => o.id))
    setMeshStates((all) => {
      const gone = Object.keys(all).filter((id) => !present.has(id))
      if (!gone.length) return all
      const kept = { ...all }
      for (const id of gone) delete kept[id]
      return kept
    })
  }, [objects])
  const shownBefore = useRef(0)
  useEffect(() => {
    const settled = (id: string): boolean => {
      const s = meshStates[id]
      return s !== undefined && !s.loading // shown, failed, or a placeholder
    }
    const present = new Set(objects.map((o) => o.id))
    if (frameOnLoad && frameOnLoad.size > 0 &&
        [...frameOnLoad].every((id) => !present.has(id) || settled(id))) {
      setFrameOnLoad(new Set())
      frame()
    }
    const shown = objects.filter((o) => o.visible && meshStates[o.id]?.shown).length
    if (shownBefore.current === 0 && shown > 0) frame()
    shownBefore.current = shown
  }, [meshStates, objects, frameOnLoad, frame])

  const undoRedo = useCallback(async (redo: boolean) => {
    if (!canEdit || preview) return
    try {
      await (redo ? api.redo(project.id) : api.undo(project.id))
      setMessage(null) // an earlier refusal no longer holds
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
      case 'frame': frame(); break
      case 'wireframe': setWireframe((w) => !w); break
      case 'flat': setFlat((f) => !f); break
      case 'stats': setStatsOn((on) => !on); break
      case 'duplicate': duplicate(); break
      case 'delete': remove(); break
      case 'deselect': select(null); break
      case 'hide': if (selected) onToggle('visible', !selected.visible); break
      case 'lock': if (selected) onToggle('locked', !selected.locked); break
    }
  }, [undoRedo, selected, onToggle, duplicate, remove, select, frame])

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
        deletable={selectedIds.length} deleteRefusal={deletion} onDelete={remove}
        onMode={setMode} onWireframe={setWireframe} onFlat={setFlat} onStats={setStatsOn}
        onDuplicate={duplicate} onFrame={() => run('frame')}
        onUndo={() => run('undo')} onRedo={() => run('redo')} onHelp={() => setHelp(true)} />
      <div className="workspace-body">
        <Outliner objects={objects} selection={selection} alsoSelected={alsoSelected}
          meshStates={meshStates} remoteSelections={remoteSelections} onSelect={select} />
        <div className="viewport">
          <ViewportView objects={objects} readOnly={readOnly} selection={selection}
            ownColor={color} remoteSelections={outlines} mode={mode}
            wireframe={wireframe} flat={flat} stats={statsOn}
            heatMap={heatMap} materialPreview={materialPreview} onHeatMapShown={onHeatMapShown}
            cameraMarkers={cameraMarkers} follow={followed} onCamera={onCamera}
            onTakeCamera={onTakeCamera}
            frameRequest={frameRequest} onPick={select} onViewport={onViewport}
            onTransform={onGizmo} onMeshState={onMeshState} />
          {arrivals.length > 0 && (
            <div className="arrivals" role="status" data-testid="arrivals">
              <span>{arrivals.length > 2
                ? `${arrivals.slice(-2).join('; ')} and ${arrivals.length - 2} more`
                : arrivals.join('; ')}</span>
              <button type="button" className="small" onClick={frame}>Frame all (F)</button>
              <button type="button" className="small ghost" aria-label="Dismiss"
                onClick={() => setArrivals([])}>×</button>
            </div>
          )}
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
              {t.id === 'assistant' && (
                <AssistantPanel projectId={project.id} object={preview ? null : selected}
                  active={tab === 'assistant'} changes={changes}
                  applyRefusal={!canEdit ? 'Only editors apply suggestions; viewers can ask.'
                    : preview ? 'Go back to live to apply suggestions.' : null} />
              )}
              {t.id === 'history' && (
                <HistoryPanel projectId={project.id} canEdit={canEdit} names={names}
                  changes={changes} preview={preview} onPreview={setPreview} onDiff={setDiff} />
              )}
              {t.id === 'members' && tab === 'members' && (
                <MembersPanel projectId={project.id} canManage={role === 'owner'} selfId={user.id} />
              )}
            </div>
          ))}
        </aside>
      </div>
      <HelpDialog open={help} onClose={() => setHelp(false)} />
    </div>
  )
}

