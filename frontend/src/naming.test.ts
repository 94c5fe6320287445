import { describe, expect, it } from 'vitest'
import { nextName, stemOf } from './naming'

describe('stemOf', () => {
  it('drops a trailing number and any copy suffixes', () => {
    expect(stemOf('cube 2')).toBe('cube')
    expect(stemOf('cube copy copy copy')).toBe('cube')
    expect(stemOf('cube 3 copy')).toBe('cube')
    expect(stemOf('cube')).toBe('cube')
  })

  it('keeps a name that is only a number', () => {
    expect(stemOf('42')).toBe('42')
  })
})

describe('nextName', () => {
  it('numbers a copy from 2', () => {
    expect(nextName('cube', ['cube'])).toBe('cube 2')
  })

  it('takes the number after the highest in use, whichever copy is copied', () => {
    expect(nextName('cube', ['cube', 'cube 2'])).toBe('cube 3')
    expect(nextName('cube 2', ['cube', 'cube 2', 'cube 7'])).toBe('cube 8')
  })

  it('never writes "copy"', () => {
    expect(nextName('cube copy copy', ['cube copy copy', 'cube'])).toBe('cube 2')
  })

  it('keeps a new name that nothing uses, and ignores other stems', () => {
    expect(nextName('teapot', ['cube', 'teapots', 'my teapot'])).toBe('teapot')
  })

  it('reads names with pattern characters literally', () => {
    expect(nextName('part (a)', ['part (a)', 'part (a) 4'])).toBe('part (a) 5')
  })
})
