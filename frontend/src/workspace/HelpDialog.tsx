import { useEffect, useRef } from 'react'
import { SHORTCUTS } from './shortcuts'

interface Props {
  open: boolean
  onClose: () => void
}

export function HelpDialog({ open, onClose }: Props) {
  const ref = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    const dialog = ref.current
    if (!dialog) return
    if (open && !dialog.open) dialog.showModal()
    if (!open && dialog.open) dialog.close()
  }, [open])

  return (
    <dialog ref={ref} className="card help" aria-labelledby="help-title" onClose={onClose}>
      <h2 id="help-title">Keyboard shortcuts</h2>
      <table>
        <tbody>
          {SHORTCUTS.map((s) => (
            <tr key={s.action}>
              <td><kbd>{s.keys}</kbd></td>
              <td>{s.label}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted small-text">
        In the viewport: drag to orbit, right-drag or Ctrl+drag to pan, wheel to zoom; click an
        object to select it.
      </p>
      <form method="dialog">
        <button type="submit" className="primary" autoFocus>Close</button>
      </form>
    </dialog>
  )
}
