import type { GizmoMode } from '../viewport/Viewport'

interface Props {
  mode: GizmoMode
  wireframe: boolean
  flat: boolean
  stats: boolean
  canEdit: boolean
  canDuplicate: boolean
  /** How many objects a Delete would remove (0: nothing selected). */
  deletable: number
  /** Why Delete is refused here (a viewer, time travel), or null. */
  deleteRefusal: string | null
  onMode: (mode: GizmoMode) => void
  onWireframe: (on: boolean) => void
  onFlat: (on: boolean) => void
  onStats: (on: boolean) => void
  onDuplicate: () => void
  onDelete: () => void
  onFrame: () => void
  onUndo: () => void
  onRedo: () => void
  onHelp: () => void
}

const MODES: { mode: GizmoMode; label: string; key: string }[] = [
  { mode: 'move', label: 'Move', key: 'W' },
  { mode: 'rotate', label: 'Rotate', key: 'E' },
  { mode: 'scale', label: 'Scale', key: 'R' },
]

export function Toolbar(p: Props) {
  return (
    <div className="toolbar" role="toolbar" aria-label="Viewport tools">
      <div className="segmented" role="group" aria-label="Gizmo">
        {MODES.map(({ mode, label, key }) => (
          <button key={mode} type="button" aria-pressed={p.mode === mode} title={`${label} (${key})`}
            onClick={() => p.onMode(mode)}>
            {label}
          </button>
        ))}
      </div>
      <button type="button" aria-pressed={p.wireframe} title="Wireframe (X)"
        onClick={() => p.onWireframe(!p.wireframe)}>
        Wireframe
      </button>
      <button type="button" aria-pressed={p.flat} title="Flat shading (S)"
        onClick={() => p.onFlat(!p.flat)}>
        Flat
      </button>
      <button type="button" aria-pressed={p.stats} title="Render statistics (I)"
        onClick={() => p.onStats(!p.stats)}>
        Stats
      </button>
      <button type="button" title="Frame all (F)" onClick={p.onFrame}>Frame all</button>
      <button type="button" disabled={!p.canDuplicate} title="Duplicate the selection (Ctrl+D)"
        onClick={p.onDuplicate}>
        Duplicate
      </button>
      <button type="button" disabled={p.deletable === 0 || p.deleteRefusal !== null}
        title={p.deleteRefusal ?? 'Delete the selection (Delete)'} onClick={p.onDelete}>
        {p.deletable > 1 ? `Delete ${p.deletable}` : 'Delete'}
      </button>
      <span className="spacer" />
      <button type="button" disabled={!p.canEdit} title="Undo your last change (Ctrl+Z)"
        onClick={p.onUndo}>
        Undo
      </button>
      <button type="button" disabled={!p.canEdit} title="Redo (Ctrl+Shift+Z)" onClick={p.onRedo}>
        Redo
      </button>
      <button type="button" title="Keyboard shortcuts (?)" aria-label="Keyboard shortcuts"
        onClick={p.onHelp}>
        ?
      </button>
    </div>
  )
}
