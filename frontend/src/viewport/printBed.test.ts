import { describe, expect, it } from 'vitest'
import { BUILD_VOLUME_MM, buildBox, restOffset } from './printBed'

describe('print bed', () => {
  it('is the default profile\'s build volume, Z up turned to the viewer\'s Y up', () => {
    expect(BUILD_VOLUME_MM).toEqual([220, 220, 250])
    expect(buildBox([200, 100, 300])).toEqual({ min: [-100, 0, -50], max: [100, 300, 50] })
  })

  it('rests a box on the plate with its footprint centred', () => {
    // a 20 mm cube exported at a slicer's bed coordinates, turned upright
    expect(restOffset([100, -5, -130], [120, 15, -110])).toEqual([-110, 5, 120])
    expect(restOffset([-0.5, -0.5, -0.5], [0.5, 0.5, 0.5])).toEqual([-0, 0.5, -0])
  })
})
