import { describe, expect, it } from 'vitest'
import {
  SILENT_MS, WATCH_MS, cameraPosition, colorFor, isSilent, parseCamera, samePeers, withDrags,
  type Peer,
} from './collab'
import { IDENTITY, type Transform } from './scene'

const moved: Transform = { position: [1, 2, 3], rotation: [0, 0, 0, 1], scale: [1, 1, 1] }

function peer(clientId: number, self: boolean, drag: Peer['drag']): Peer {
  return { clientId, self, drag, selection: null, camera: null,
           user: { name: `u${clientId}`, color: '#fff' } }
}

describe('withDrags', () => {
  const objects = [{ id: 'a', transform: IDENTITY }, { id: 'b', transform: IDENTITY }]

  it('shows what collaborators are dragging', () => {
    const out = withDrags(objects, [peer(2, false, { id: 'b', transform: moved })])
    expect(out.map((o) => o.transform.position)).toEqual([[0, 0, 0], [1, 2, 3]])
  })

  it('ignores the own drag (the viewport already shows it) and idle peers', () => {
    const peers = [peer(1, true, { id: 'a', transform: moved }), peer(2, false, null)]
    expect(withDrags(objects, peers)).toBe(objects)
  })
})

describe('samePeers', () => {
  const view = { alpha: 1, beta: 0.5, radius: 4, target: [1, 0, 2] as [number, number, number] }
  const turned = { ...view, alpha: 2 }

  it("leaves one's own camera out (nothing shows it)", () => {
    const before = [{ ...peer(1, true, null), camera: view }, peer(2, false, null)]
    const after = [{ ...peer(1, true, null), camera: turned }, peer(2, false, null)]
    expect(samePeers(before, after)).toBe(true)
  })

  it("sees others' cameras, selections, drags and arrivals", () => {
    const before = [peer(1, true, null), { ...peer(2, false, null), camera: view }]
    expect(samePeers(before, [before[0], { ...before[1], camera: turned }])).toBe(false)
    expect(samePeers(before, [before[0], { ...before[1], selection: 'a' }])).toBe(false)
    expect(samePeers(before, [before[0], { ...before[1], drag: { id: 'a', transform: moved } }]))
      .toBe(false)
    expect(samePeers(before, [...before, peer(3, false, null)])).toBe(false)
  })
})

describe('colorFor', () => {
  it('is stable and a hex colour', () => {
    expect(colorFor('alice')).toBe(colorFor('alice'))
    expect(colorFor('bob')).toMatch(/^#[0-9a-f]{6}$/)
  })
})

describe('camera presence', () => {
  it('parses a camera and refuses malformed ones', () => {
    const c = { alpha: 1, beta: 0.5, radius: 4, target: [1, 0, 2] }
    expect(parseCamera(c)).toEqual(c)
    expect(parseCamera({ ...c, radius: 0 })).toBeNull()
    expect(parseCamera({ ...c, target: [1, 2] })).toBeNull()
    expect(parseCamera({ ...c, alpha: 'x' })).toBeNull()
    expect(parseCamera(null)).toBeNull()
  })

  it('places the orbit camera at its radius from the target', () => {
    const p = cameraPosition({ alpha: 0, beta: Math.PI / 2, radius: 5, target: [1, 2, 3] })
    expect(p[0]).toBeCloseTo(6)
    expect(p[1]).toBeCloseTo(2)
    expect(p[2]).toBeCloseTo(3)
    const above = cameraPosition({ alpha: 0.3, beta: 0, radius: 2, target: [0, 0, 0] })
    expect(above[1]).toBeCloseTo(2)
  })
})

describe('a dead connection', () => {
  it('is one silent for SILENT_MS while the page could have heard it', () => {
    expect(isSilent(1000, 0, 1000 + SILENT_MS)).toBe(false)
    expect(isSilent(1000, 0, 1001 + SILENT_MS)).toBe(true)
    // the page was busy until 2000: messages may wait behind the watch, so not yet
    expect(isSilent(1000, 2000, 2000 + SILENT_MS)).toBe(false)
    expect(isSilent(1000, 2000, 2001 + SILENT_MS)).toBe(true)
  })

  it('is said within 2 s of the last message', () => {
    expect(SILENT_MS + WATCH_MS).toBeLessThanOrEqual(2000)
  })
})
