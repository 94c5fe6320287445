import { describe, expect, it } from 'vitest'
import { FrameTimes, median } from './stats'

describe('median', () => {
  it('is the middle value, or the mean of the two middle ones', () => {
    expect(median([])).toBe(0)
    expect(median([5])).toBe(5)
    expect(median([9, 1, 5])).toBe(5)
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })
})

describe('FrameTimes', () => {
  it('measures intervals between frame starts and keeps a window', () => {
    const frames = new FrameTimes(3)
    frames.add(0, 2)
    expect(frames.medians()).toEqual({ renderMs: 2, intervalMs: 0 })
    frames.add(16, 4)
    frames.add(40, 6) // intervals 16, 24
    expect(frames.medians()).toEqual({ renderMs: 4, intervalMs: 20 })
    frames.add(50, 100) // render window now 4, 6, 100; intervals 16, 24, 10
    expect(frames.medians()).toEqual({ renderMs: 6, intervalMs: 16 })
  })

  it('starts over when cleared', () => {
    const frames = new FrameTimes(10)
    frames.add(0, 1)
    frames.add(10, 1)
    frames.clear()
    frames.add(500, 3)
    expect(frames.medians()).toEqual({ renderMs: 3, intervalMs: 0 })
  })
})

describe('FrameTimes between pauses', () => {
  it('leaves out the gap before a frame drawn after an idle pause', () => {
    const frames = new FrameTimes(10)
    frames.add(0, 1)
    frames.add(20, 1, true)
    frames.add(5000, 1, false) // the scene was still for five seconds
    frames.add(5030, 1, true)
    expect(frames.medians().intervalMs).toBe(25)
  })
})
