import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { CloseCode, MessageType, describeClose, isRetryable, parseNotice } from './protocol'

const PY = fileURLToPath(new URL('../../core/collab/protocol.py', import.meta.url))

/** `NAME = 123` lines of one IntEnum class in the server's protocol module. */
function pythonEnum(source: string, cls: string): Record<string, number> {
  const body = source.split(`class ${cls}(IntEnum):`)[1].split(/\n(?:class |@|def )/)[0]
  const values: Record<string, number> = {}
  for (const m of body.matchAll(/^\s+([A-Z_0-9]+) = (\d+)/gm)) values[m[1]] = Number(m[2])
  return values
}

describe('protocol constants', () => {
  const source = readFileSync(PY, 'utf8')

  it('mirror the server close codes', () => {
    const server = pythonEnum(source, 'CloseCode')
    expect(Object.keys(server).length).toBeGreaterThan(5)
    for (const [name, code] of Object.entries(server)) {
      expect(CloseCode[name as keyof typeof CloseCode], name).toBe(code)
    }
  })

  it('mirror the server message types, NOTICE included', () => {
    const server = pythonEnum(source, 'MessageType')
    expect(server.NOTICE).toBe(100)
    for (const [name, code] of Object.entries(server)) {
      expect(MessageType[name as keyof typeof MessageType], name).toBe(code)
    }
  })

  it('has the codes the issue names', () => {
    expect([CloseCode.BAD_MESSAGE, CloseCode.UNAUTHENTICATED, CloseCode.FORBIDDEN,
      CloseCode.NOT_FOUND, CloseCode.STORAGE_FAILED]).toEqual([4400, 4401, 4403, 4404, 4500])
  })

  it('retries storage failures but not refusals', () => {
    expect(isRetryable(CloseCode.STORAGE_FAILED)).toBe(true)
    expect(isRetryable(CloseCode.GOING_AWAY)).toBe(true)
    expect(isRetryable(CloseCode.FORBIDDEN)).toBe(false)
    expect(isRetryable(CloseCode.UNAUTHENTICATED)).toBe(false)
  })

  it('describes closes for people', () => {
    expect(describeClose(4403, 'removed')).toContain('not a member')
    expect(describeClose(4500)).toContain('sent again')
  })

  it('parses notices and ignores junk', () => {
    const body = new TextEncoder().encode('{"type":"refused","detail":"viewers cannot edit"}')
    expect(parseNotice(body)).toEqual({ type: 'refused', detail: 'viewers cannot edit' })
    expect(parseNotice(new TextEncoder().encode('nope'))).toBeNull()
  })
})
