import { useEffect, useState, type KeyboardEvent } from 'react'

interface Props {
  label: string
  value: number
  disabled: boolean
  step?: number
  onCommit: (value: number) => void
}

/** A number input that follows remote changes until focused, and commits on Enter or blur. */
export function NumberField({ label, value, disabled, step = 0.1, onCommit }: Props) {
  const [text, setText] = useState(String(value))
  const [editing, setEditing] = useState(false)

  useEffect(() => {
    if (!editing) setText(String(value))
  }, [value, editing])

  function commit(): void {
    setEditing(false)
    const parsed = Number(text)
    if (text.trim() === '' || !Number.isFinite(parsed)) {
      setText(String(value))
      return
    }
    if (parsed !== value) onCommit(parsed)
  }

  function onKeyDown(e: KeyboardEvent<HTMLInputElement>): void {
    if (e.key === 'Enter') commit()
    if (e.key === 'Escape') {
      setEditing(false)
      setText(String(value))
    }
  }

  return (
    <label className="number-field">
      <span>{label}</span>
      <input type="number" step={step} value={text} disabled={disabled} aria-label={label}
        onFocus={() => setEditing(true)} onBlur={commit} onKeyDown={onKeyDown}
        onChange={(e) => { setEditing(true); setText(e.target.value) }} />
    </label>
  )
}
