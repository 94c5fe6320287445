import { describe, expect, it } from 'vitest'
import { colorFor, withDrags, type Peer } from './collab'
import { IDENTITY, type Transform } from './scene'

const moved: Transform = { position: [1, 2, 3], rotation: [0, 0, 0, 1], scale: [1, 1, 1] }

function peer(clientId: number, self: boolean, drag: Peer['drag']): Peer {
  return { clientId, self, drag, selection: null, user: { name: `u${clientId}`, color: '#fff' } }
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

describe('colorFor', () => {
  it('is stable and a hex colour', () => {
    expect(colorFor('alice')).toBe(colorFor('alice'))
    expect(colorFor('bob')).toMatch(/^#[0-9a-f]{6}$/)
  })
})
