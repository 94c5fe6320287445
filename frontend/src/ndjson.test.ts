import { describe, expect, it } from 'vitest'
import { LineSplitter, NdjsonError, readNdjson } from './ndjson'

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder()
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(encoder.encode(c))
      controller.close()
    },
  })
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<unknown[]> {
  const out: unknown[] = []
  for await (const value of readNdjson(stream)) out.push(value)
  return out
}

describe('LineSplitter', () => {
  it('keeps a partial line for the next chunk', () => {
    const s = new LineSplitter()
    expect(s.push('{"a":1}\n{"b"')).toEqual(['{"a":1}'])
    expect(s.push(':2}\n')).toEqual(['{"b":2}'])
    expect(s.flush()).toEqual([])
  })

  it('drops blank lines and carriage returns', () => {
    const s = new LineSplitter()
    expect(s.push('1\r\n\n  \n2\r\n')).toEqual(['1', '2'])
  })

  it('flushes a last line without newline', () => {
    const s = new LineSplitter()
    expect(s.push('{"x":')).toEqual([])
    expect(s.push('3}')).toEqual([])
    expect(s.flush()).toEqual(['{"x":3}'])
  })
})

describe('readNdjson', () => {
  it('yields objects split across chunks at any byte', async () => {
    const text = '{"event":"queued","job_id":"j"}\n{"event":"final","job_id":"j"}\n'
    const chunks = text.split('').map((c) => c)
    expect(await collect(streamOf(...chunks))).toEqual([
      { event: 'queued', job_id: 'j' }, { event: 'final', job_id: 'j' },
    ])
  })

  it('decodes multi-byte characters split between chunks', async () => {
    const bytes = new TextEncoder().encode('{"name":"σφαίρα"}\n')
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 10))
        controller.enqueue(bytes.slice(10))
        controller.close()
      },
    })
    expect(await collect(stream)).toEqual([{ name: 'σφαίρα' }])
  })

  it('reads a last line without newline', async () => {
    expect(await collect(streamOf('{"a":1}\n{"a":2}'))).toEqual([{ a: 1 }, { a: 2 }])
  })

  it('refuses a line that is not JSON', async () => {
    await expect(collect(streamOf('{"a":1}\n<html>\n'))).rejects.toBeInstanceOf(NdjsonError)
  })
})
