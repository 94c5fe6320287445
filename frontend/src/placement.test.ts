import { describe, expect, it } from 'vitest'
import { copySpot, freeSpot, moved, overlaps, type Footprint } from './placement'

const box = (cx: number, cz: number, w = 1, d = 1): Footprint =>
  ({ minX: cx - w / 2, maxX: cx + w / 2, minZ: cz - d / 2, maxZ: cz + d / 2 })

describe('freeSpot', () => {
  it('leaves an object that overlaps nothing where it is', () => {
    expect(freeSpot(box(0, 0), [])).toEqual([0, 0])
    expect(freeSpot(box(0, 0), [box(5, 5)])).toEqual([0, 0])
  })

  it('moves an object off one at the centre to a neighbouring spot, overlapping nothing', () => {
    const others = [box(0, 0)]
    const [dx, dz] = freeSpot(box(0, 0), others)
    const placed = moved(box(0, 0), dx, dz)
    expect(others.some((o) => overlaps(placed, o))).toBe(false)
    expect(Math.hypot(dx, dz)).toBeLessThan(1.2) // the first ring: one width (and a gap) away
  })

  it('spirals out past a filled ring', () => {
    const others: Footprint[] = []
    for (let i = -1; i <= 1; i++) for (let j = -1; j <= 1; j++) others.push(box(i * 1.1, j * 1.1))
    const [dx, dz] = freeSpot(box(0, 0), others)
    const placed = moved(box(0, 0), dx, dz)
    expect(others.some((o) => overlaps(placed, o))).toBe(false)
    expect(Math.max(Math.abs(dx), Math.abs(dz))).toBeLessThan(2.5)
  })

  it('places a big object clear of a small one, by its own size', () => {
    const big = box(0, 0, 40, 20)
    const [dx, dz] = freeSpot(big, [box(0, 0, 1, 1)])
    expect(overlaps(moved(big, dx, dz), box(0, 0, 1, 1))).toBe(false)
  })
})

describe('copySpot', () => {
  it('offsets a copy by its own width along X', () => {
    const source = box(0, 0, 30, 10)
    const [dx, dz] = copySpot(source, [source])
    expect(dz).toBe(0)
    expect(dx).toBeGreaterThanOrEqual(30)
    expect(dx).toBeLessThan(36)
    expect(overlaps(moved(source, dx, dz), source)).toBe(false)
  })

  it('goes one width further when the next spot is taken', () => {
    const source = box(0, 0)
    const first = moved(source, ...copySpot(source, [source]))
    const [dx] = copySpot(source, [source, first])
    expect(dx).toBeGreaterThan(2)
    expect(overlaps(moved(source, dx, 0), first)).toBe(false)
  })
})

describe('overlaps', () => {
  it('lets footprints touch', () => {
    expect(overlaps(box(0, 0), box(1, 0))).toBe(false)
    expect(overlaps(box(0, 0), box(0.9, 0))).toBe(true)
  })
})
