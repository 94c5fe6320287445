import { meshUrl, type SceneObject } from '../scene'
import type { MeshState } from '../viewport/Viewport'

interface Props {
  objects: SceneObject[]
  selection: string | null
  /** Objects selected besides `selection` (Shift- or Ctrl-click). */
  alsoSelected: string[]
  meshStates: Record<string, MeshState>
  /** Object id → colours of collaborators who selected it. */
  remoteSelections: Map<string, string>
  onSelect: (id: string, additive: boolean) => void
}

function meshNote(o: SceneObject, s: MeshState | undefined): string {
  if (!meshUrl(o)) return 'no viewable mesh'
  const stage = o.stage ?? 'mesh'
  if (!s) return `${stage} · waiting…`
  if (s.error) return 'mesh failed to load'
  if (s.loading) return s.shown ? `${s.shown} · loading ${stage}…` : `loading ${stage}…`
  return s.shown ?? ''
}

export function Outliner(
  { objects, selection, alsoSelected, meshStates, remoteSelections, onSelect }: Props,
) {
  return (
    <nav className="outliner" aria-label="Scene objects">
      <h2>Scene</h2>
      {objects.length === 0 && <p className="muted small-text">No objects yet. Generate one from an image.</p>}
      <ul>
        {objects.map((o) => {
          const remote = remoteSelections.get(o.id)
          return (
            <li key={o.id}>
              <button type="button" className="outliner-item" aria-current={o.id === selection}
                data-selected={o.id === selection || alsoSelected.includes(o.id)}
                data-object-id={o.id} data-stage={meshStates[o.id]?.shown ?? ''}
                style={remote ? { boxShadow: `inset 3px 0 0 ${remote}` } : undefined}
                onClick={(e) => onSelect(o.id, e.shiftKey || e.ctrlKey || e.metaKey)}>
                <span className="object-name" title={o.name}>{o.name}</span>
                <span className="object-meta">
                  {!o.visible && <span title="Hidden">hidden</span>}
                  {o.locked && <span title="Locked">locked</span>}
                  <span>{meshNote(o, meshStates[o.id])}</span>
                </span>
              </button>
            </li>
          )
        })}
      </ul>
    </nav>
  )
}
