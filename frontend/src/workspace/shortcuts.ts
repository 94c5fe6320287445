/** The workspace's keyboard shortcuts: one list for the handler and the help dialog. */

export type Action =
  | 'help' | 'undo' | 'redo' | 'move' | 'rotate' | 'scale' | 'frame' | 'hide' | 'lock'
  | 'wireframe' | 'flat' | 'duplicate' | 'deselect' | 'stats' | 'delete'

export interface Shortcut {
  action: Action
  keys: string
  label: string
}

export const SHORTCUTS: Shortcut[] = [
  { action: 'help', keys: '?', label: 'Show this list' },
  { action: 'undo', keys: 'Ctrl+Z', label: 'Undo your last change' },
  { action: 'redo', keys: 'Ctrl+Shift+Z', label: 'Redo your last undone change' },
  { action: 'move', keys: 'W', label: 'Move gizmo' },
  { action: 'rotate', keys: 'E', label: 'Rotate gizmo' },
  { action: 'scale', keys: 'R', label: 'Scale gizmo' },
  { action: 'frame', keys: 'F', label: 'Frame all objects' },
  { action: 'hide', keys: 'H', label: 'Hide or show the selected object' },
  { action: 'lock', keys: 'L', label: 'Lock or unlock the selected object' },
  { action: 'wireframe', keys: 'X', label: 'Toggle wireframe' },
  { action: 'flat', keys: 'S', label: 'Toggle flat or smooth shading' },
  { action: 'stats', keys: 'I', label: 'Show render statistics (draw calls, triangles, frame time)' },
  { action: 'duplicate', keys: 'Ctrl+D', label: 'Duplicate the selected object (shares its mesh)' },
  { action: 'delete', keys: 'Delete', label: 'Delete the selected objects (Shift- or Ctrl-click selects several)' },
  { action: 'deselect', keys: 'Esc', label: 'Clear the selection or close a dialog' },
]

export interface KeyLike {
  key: string
  ctrlKey: boolean
  metaKey: boolean
  shiftKey: boolean
  altKey: boolean
}

/** The action a key press asks for, or null. */
export function actionFor(e: KeyLike): Action | null {
  const mod = e.ctrlKey || e.metaKey
  const key = e.key.toLowerCase()
  if (mod && !e.altKey && key === 'z') return e.shiftKey ? 'redo' : 'undo'
  if (mod && !e.altKey && key === 'y') return 'redo'
  if (mod && !e.altKey && !e.shiftKey && key === 'd') return 'duplicate'
  if (mod || e.altKey) return null
  switch (key) {
    case '?': return 'help'
    case 'w': return 'move'
    case 'e': return 'rotate'
    case 'r': return 'scale'
    case 'f': return 'frame'
    case 'h': return 'hide'
    case 'l': return 'lock'
    case 'x': return 'wireframe'
    case 's': return 'flat'
    case 'i': return 'stats'
    case 'delete': return 'delete'
    case 'backspace': return 'delete'
    case 'escape': return 'deselect'
    default: return null
  }
}

/** Whether a key press belongs to a text field rather than to the workspace. */
export function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName)
}
