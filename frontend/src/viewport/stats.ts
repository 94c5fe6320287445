/**
 * What the viewport's frames cost, for the statistics overlay and the benchmarks. Medians
 * over a window of recent frames: a single slow frame (a shader compile, a garbage
 * collection) should not move the figure.
 */

export interface RenderStats {
  objects: number
  /** Objects drawn as thin instances of a shared mesh. */
  instanced: number
  drawCalls: number
  /** Triangles drawn in the last frame (lines of the grid and axes, and the bed, left out). */
  triangles: number
  /** Median time spent in `scene.render()` (JavaScript and WebGL calls), ms. */
  renderMs: number
  /** Median time from one frame's start to the next, over frames drawn back to back (while
   *  the camera moves): what the user sees, ms. */
  intervalMs: number
  /** Wall-clock time (ms since the epoch) the first frame after the last scene change was
   *  drawn; 0 before any. */
  lastChangeDrawn: number
}

export class FrameTimes {
  private readonly render: number[] = []
  private readonly interval: number[] = []
  private lastStart: number | null = null

  constructor(private readonly window: number) {}

  /** A frame started at `start` (ms) and took `renderMs` to draw; `followsLast` when the
   *  frame before it was drawn on the previous tick (not after an idle pause). */
  add(start: number, renderMs: number, followsLast = true): void {
    if (this.lastStart !== null && followsLast) {
      push(this.interval, start - this.lastStart, this.window)
    }
    this.lastStart = start
    push(this.render, renderMs, this.window)
  }

  clear(): void {
    this.render.length = 0
    this.interval.length = 0
    this.lastStart = null
  }

  medians(): { renderMs: number; intervalMs: number } {
    return { renderMs: median(this.render), intervalMs: median(this.interval) }
  }
}

function push(values: number[], value: number, window: number): void {
  values.push(value)
  if (values.length > window) values.shift()
}

/** The middle value (mean of the two middle ones for an even count); 0 when empty. */
export function median(values: readonly number[]): number {
  if (!values.length) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
