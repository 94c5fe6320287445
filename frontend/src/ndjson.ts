/** Newline-delimited JSON read from a fetch body, one object per line as it arrives. */

/** Splits text chunks into complete lines, keeping a partial last line for the next chunk. */
export class LineSplitter {
  private rest = ''

  push(chunk: string): string[] {
    const text = this.rest + chunk
    const lines = text.split('\n')
    this.rest = lines.pop() ?? ''
    return lines.map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '')
  }

  /** The last line when the stream ends without a newline. */
  flush(): string[] {
    const last = this.rest.replace(/\r$/, '')
    this.rest = ''
    return last.trim() === '' ? [] : [last]
  }
}

export class NdjsonError extends Error {}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line)
  } catch {
    throw new NdjsonError(`The server sent a line that is not JSON: ${line.slice(0, 80)}`)
  }
}

/** Yields each JSON value of an NDJSON byte stream as soon as its line is complete. */
export async function* readNdjson(stream: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const reader = stream.getReader()
  const decoder = new TextDecoder()
  const splitter = new LineSplitter()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      for (const line of splitter.push(decoder.decode(value, { stream: true }))) {
        yield parseLine(line)
      }
    }
    for (const line of splitter.push(decoder.decode())) yield parseLine(line)
    for (const line of splitter.flush()) yield parseLine(line)
  } finally {
    reader.releaseLock()
  }
}
