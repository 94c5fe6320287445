import { describe, expect, it } from 'vitest'
import {
  EMPTY_TIMELINE, type TimelineEvent, type TimelinePage, actorLabel, eventAt, mergePage,
  readForward, sliderStops, timelineLine,
} from './timeline'

const ev = (position: number): TimelineEvent => ({
  position, at: '2026-01-01T00:00:00Z', actor: 'u', kind: 'Scene.Updated', summary: `#${position}`,
})

/** A fake server over positions, paging exactly as api/routes/history.py does. */
function server(positions: number[]) {
  const calls: [number, number][] = []
  const fetchPage = async (after: number, limit: number): Promise<TimelinePage> => {
    calls.push([after, limit])
    const rows = positions.filter((p) => p > after).slice(0, limit).map(ev)
    return { events: rows, next: rows.length === limit ? rows[rows.length - 1].position : null }
  }
  return { calls, fetchPage }
}

describe('timeline paging', () => {
  it('reads every page following the cursor', async () => {
    const s = server([3, 5, 8, 13, 21, 34, 55])
    const state = await readForward(EMPTY_TIMELINE, s.fetchPage, 3)
    expect(sliderStops(state)).toEqual([3, 5, 8, 13, 21, 34, 55])
    expect(s.calls).toEqual([[0, 3], [8, 3], [34, 3]])
    expect(state.more).toBe(false)
    expect(state.cursor).toBe(55)
  })

  it('handles a last page that is exactly full', async () => {
    const s = server([1, 2, 3, 4])
    const state = await readForward(EMPTY_TIMELINE, s.fetchPage, 2)
    expect(sliderStops(state)).toEqual([1, 2, 3, 4])
    expect(s.calls).toEqual([[0, 2], [2, 2], [4, 2]])
  })

  it('fetches only what is new on refresh', async () => {
    const positions = [1, 2]
    const s = server(positions)
    let state = await readForward(EMPTY_TIMELINE, s.fetchPage, 10)
    positions.push(7, 9)
    state = await readForward(state, s.fetchPage, 10)
    expect(sliderStops(state)).toEqual([1, 2, 7, 9])
    expect(s.calls[s.calls.length - 1]).toEqual([2, 10])
  })

  it('stops after maxPages and says there is more', async () => {
    const s = server(Array.from({ length: 50 }, (_, i) => i + 1))
    const state = await readForward(EMPTY_TIMELINE, s.fetchPage, 5, 2)
    expect(state.events).toHaveLength(10)
    expect(state.more).toBe(true)
  })

  it('drops duplicates from overlapping pages', () => {
    const a = mergePage(EMPTY_TIMELINE, { events: [ev(1), ev(2)], next: 2 })
    const b = mergePage(a, { events: [ev(2), ev(3)], next: null })
    expect(sliderStops(b)).toEqual([1, 2, 3])
  })

  it('clamps slider indexes', () => {
    const state = mergePage(EMPTY_TIMELINE, { events: [ev(4), ev(6)], next: null })
    expect(eventAt(state, -3)?.position).toBe(4)
    expect(eventAt(state, 9)?.position).toBe(6)
    expect(eventAt(EMPTY_TIMELINE, 0)).toBeNull()
  })
})

describe('timeline lines', () => {
  it('name the actor, never by a raw id', () => {
    const names = new Map([['u-1', 'alice']])
    const line = (actor: string | null, actorName?: string | null) =>
      actorLabel({ ...ev(1), actor, actor_name: actorName }, names)
    expect(line('u-2', 'bob')).toBe('bob')
    expect(line('u-1')).toBe('alice')
    expect(line('0b6f1c9e-6a39-4f44-9d67-4b3f8a0c2d11')).toBe('a former member')
    expect(line('server')).toBe('')
    expect(line('mesh-worker-7')).toBe('')
    expect(line(null)).toBe('')
  })

  it('read as a sentence, with or without a person', () => {
    const names = new Map([['u-1', 'alice']])
    expect(timelineLine({ ...ev(1), actor: 'u-1', summary: 'moved Teapot' }, names)).toBe('alice moved Teapot')
    expect(timelineLine({ ...ev(2), actor: 'mesh-1', summary: 'repair of teapot: score 58 → 82' }, names))
      .toBe('Repair of teapot: score 58 → 82')
  })
})
