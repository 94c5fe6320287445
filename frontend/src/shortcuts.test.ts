import { describe, expect, it } from 'vitest'
import { SHORTCUTS, actionFor } from './workspace/shortcuts'

const key = (k: string, mods: Partial<{ ctrl: boolean; shift: boolean; meta: boolean; alt: boolean }> = {}) =>
  ({ key: k, ctrlKey: !!mods.ctrl, shiftKey: !!mods.shift, metaKey: !!mods.meta, altKey: !!mods.alt })

describe('shortcuts', () => {
  it('map undo and redo', () => {
    expect(actionFor(key('z', { ctrl: true }))).toBe('undo')
    expect(actionFor(key('Z', { ctrl: true, shift: true }))).toBe('redo')
    expect(actionFor(key('z', { meta: true }))).toBe('undo')
    expect(actionFor(key('y', { ctrl: true }))).toBe('redo')
  })

  it('delete with Delete or Backspace', () => {
    expect(actionFor(key('Delete'))).toBe('delete')
    expect(actionFor(key('Backspace'))).toBe('delete')
    expect(actionFor(key('Backspace', { ctrl: true }))).toBeNull()
  })

  it('leave other modified keys to the browser', () => {
    expect(actionFor(key('w', { ctrl: true }))).toBeNull()
    expect(actionFor(key('f', { alt: true }))).toBeNull()
  })

  it('cover every listed shortcut', () => {
    const listed = new Set(SHORTCUTS.map((s) => s.action))
    const pressed = ['?', 'w', 'e', 'r', 'f', 'h', 'l', 'x', 's', 'i', 'Escape', 'Delete']
      .map((k) => actionFor(key(k)))
    pressed.push(actionFor(key('z', { ctrl: true })), actionFor(key('z', { ctrl: true, shift: true })),
      actionFor(key('d', { ctrl: true })))
    expect(new Set(pressed)).toEqual(listed)
  })
})
