/**
 * Where a new object lands on the bed: on a free spot, not on top of what is there. Objects are
 * seen from above as their footprints (boxes on the X–Z plane, Y being up); a new object's
 * footprint is tried at spots spiralling out from the bed's centre, and a copy's beside its
 * source first, one of its own widths further along X. Pure arithmetic, so that it is tested
 * without a viewport.
 */

export interface Footprint {
  minX: number
  maxX: number
  minZ: number
  maxZ: number
}

/** How many rings of spots the spiral tries before it gives up and stacks beyond them. */
const RINGS = 40

export function width(f: Footprint): number {
  return f.maxX - f.minX
}

export function depth(f: Footprint): number {
  return f.maxZ - f.minZ
}

/** The room left between neighbours: a tenth of the object's larger side. */
export function gapFor(f: Footprint): number {
  return Math.max(width(f), depth(f), 1e-3) * 0.1
}

/** Whether two footprints overlap by more than a hair (touching is allowed). */
export function overlaps(a: Footprint, b: Footprint): boolean {
  const eps = 1e-9
  return a.minX < b.maxX - eps && b.minX < a.maxX - eps &&
    a.minZ < b.maxZ - eps && b.minZ < a.maxZ - eps
}

/** The footprint moved by (dx, dz). */
export function moved(f: Footprint, dx: number, dz: number): Footprint {
  return { minX: f.minX + dx, maxX: f.maxX + dx, minZ: f.minZ + dz, maxZ: f.maxZ + dz }
}

function grown(f: Footprint, by: number): Footprint {
  return { minX: f.minX - by, maxX: f.maxX + by, minZ: f.minZ - by, maxZ: f.maxZ + by }
}

function isFree(f: Footprint, others: Footprint[], gap: number): boolean {
  const room = grown(f, gap)
  return !others.some((o) => overlaps(room, o))
}

/** The spots of ring `r` of a square spiral around (0, 0), nearest to the centre first. */
function ring(r: number): [number, number][] {
  if (r === 0) return [[0, 0]]
  const spots: [number, number][] = []
  for (let i = -r; i <= r; i++) {
    spots.push([i, -r], [i, r])
    if (i !== -r && i !== r) spots.push([-r, i], [r, i])
  }
  return spots.sort((a, b) => Math.hypot(...a) - Math.hypot(...b) || a[0] - b[0] || a[1] - b[1])
}

/**
 * How far to move `footprint` (dx, dz) so that it overlaps none of `others`: (0, 0) if it is
 * free where it is, else the free spot nearest the bed's centre on a spiral whose step is the
 * object's own size plus a gap.
 */
export function freeSpot(footprint: Footprint, others: Footprint[]): [number, number] {
  const gap = gapFor(footprint)
  if (isFree(footprint, others, gap)) return [0, 0]
  const cx = (footprint.minX + footprint.maxX) / 2
  const cz = (footprint.minZ + footprint.maxZ) / 2
  const stepX = width(footprint) + gap
  const stepZ = depth(footprint) + gap
  for (let r = 0; r <= RINGS; r++) {
    for (const [i, j] of ring(r)) {
      const dx = i * stepX - cx
      const dz = j * stepZ - cz
      if (isFree(moved(footprint, dx, dz), others, gap)) return [dx, dz]
    }
  }
  // Everything near is taken: beyond the farthest object along X.
  const far = Math.max(...others.map((o) => o.maxX))
  return [far + gap - footprint.minX, -cz]
}

/** How far to move a copy of `source` (dx, dz): one of its own widths (and a gap) along X,
 *  further while that is taken, else the nearest free spot. */
export function copySpot(source: Footprint, others: Footprint[]): [number, number] {
  const gap = gapFor(source)
  const step = width(source) + gap
  for (let k = 1; k <= RINGS; k++) {
    if (isFree(moved(source, k * step, 0), others, gap)) return [k * step, 0]
  }
  return freeSpot(source, [...others, source])
}
