import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import {
  IDENTITY, addMeshObject, deleteObjects, duplicateObject, eulerDegToQuat, meshUrl, objectFromFields, objectsOf, objectsOfSnapshot,
  parseTransform, quatToEulerDeg, writeField, writeTransform,
} from './scene'

const JOB = '0b6f1c9e-6a39-4f44-9d67-4b3f8a0c2d11'

function docWith(id: string, fields: Record<string, unknown>): Y.Doc {
  const doc = new Y.Doc()
  doc.getMap('objects').set(id, new Y.Map(Object.entries(fields)))
  return doc
}

describe('transform ↔ Y.Map', () => {
  it('reads the placement keys the server writes', () => {
    const doc = docWith(JOB, {
      name: 'cat', stage: 'preview', blob: 'blobs/sha256/aa/bb',
      position: [1, 2, 3], rotation: [0, 0, 0, 1], scale: [2, 2, 2],
    })
    const [o] = objectsOf(doc)
    expect(o.transform).toEqual({ position: [1, 2, 3], rotation: [0, 0, 0, 1], scale: [2, 2, 2] })
    expect(o.visible).toBe(true)
    expect(o.locked).toBe(false)
    expect(meshUrl(o)).toBe(`/api/v1/jobs/${JOB}/stages/preview.glb?encoding=meshopt`)
  })

  it('falls back to identity for malformed transforms', () => {
    expect(parseTransform({ position: [1, 'x', 3] })).toEqual(IDENTITY)
    expect(parseTransform(null)).toEqual(IDENTITY)
    expect(parseTransform({ scale: [1, 2] }).scale).toEqual([1, 1, 1])
  })

  it('reads a legacy transform value as if split, the keys beside it winning', () => {
    const legacy = { position: [1, 2, 3], rotation: [0, 0, 0, 1], scale: [2, 2, 2] }
    expect(objectsOf(docWith('o', { transform: legacy }))[0].transform).toEqual(legacy)
    const both = objectsOf(docWith('o', { transform: legacy, position: [9, 9, 9] }))[0]
    expect(both.transform).toEqual({ ...legacy, position: [9, 9, 9] })
  })

  it('writes only the parts that changed, each its own key', () => {
    const a = docWith('o', { position: [0, 0, 0], rotation: [0, 0, 0, 1], scale: [1, 1, 1] })
    const b = new Y.Doc()
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    // b scales while a moves, concurrently: both survive the merge
    expect(writeTransform(a, 'o', { ...IDENTITY, position: [5, 0, 0] })).toBe(true)
    expect(writeTransform(b, 'o', { ...IDENTITY, scale: [2, 2, 2] })).toBe(true)
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b))
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    for (const doc of [a, b]) {
      expect(objectsOf(doc)[0].transform).toEqual({ position: [5, 0, 0], rotation: [0, 0, 0, 1], scale: [2, 2, 2] })
    }
  })

  it('splits a legacy transform when it writes one', () => {
    const doc = docWith('o', { transform: { position: [1, 2, 3], rotation: [0, 0, 0, 1], scale: [1, 1, 1] } })
    expect(writeTransform(doc, 'o', { position: [1, 2, 4], rotation: [0, 0, 0, 1], scale: [1, 1, 1] })).toBe(true)
    const map = (doc.getMap('objects').get('o') as Y.Map<unknown>).toJSON()
    expect(map).toEqual({ position: [1, 2, 4], rotation: [0, 0, 0, 1], scale: [1, 1, 1] })
  })

  it('writes a transform as plain JSON another replica reads', () => {
    const a = docWith('o', { name: 'o' })
    const b = new Y.Doc()
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    a.on('update', (u: Uint8Array) => Y.applyUpdate(b, u))
    const t = { position: [4, 5, 6], rotation: [0, 0.7071, 0, 0.7071], scale: [1, 1, 3] } as const
    expect(writeTransform(a, 'o', { position: [4, 5, 6], rotation: [0, 0.7071, 0, 0.7071], scale: [1, 1, 3] })).toBe(true)
    const stored = (b.getMap('objects').get('o') as Y.Map<unknown>).toJSON()
    expect(stored).toEqual({ name: 'o', position: [...t.position], rotation: [...t.rotation], scale: [...t.scale] })
    expect(objectsOf(b)[0].transform.position).toEqual([4, 5, 6])
  })

  it('sends nothing when the transform did not change', () => {
    const doc = docWith('o', { position: [0, 0, 0], rotation: [0, 0, 0, 1], scale: [1, 1, 1] })
    let updates = 0
    doc.on('update', () => updates++)
    expect(writeTransform(doc, 'o', IDENTITY)).toBe(false)
    expect(updates).toBe(0)
  })

  it('does not write to objects that do not exist', () => {
    expect(writeTransform(new Y.Doc(), 'nope', IDENTITY)).toBe(false)
  })

  it('sets visible and locked', () => {
    const doc = docWith('o', { visible: true, locked: false })
    expect(writeField(doc, 'o', 'visible', false)).toBe(true)
    expect(writeField(doc, 'o', 'locked', true)).toBe(true)
    const [o] = objectsOf(doc)
    expect([o.visible, o.locked]).toEqual([false, true])
  })
})

describe('objects', () => {
  it('use cached_from as the job of a cache hit', () => {
    const o = objectFromFields('other-id', { cached_from: JOB, stage: 'final' })
    expect(meshUrl(o)).toBe(`/api/v1/jobs/${JOB}/stages/final.glb?encoding=meshopt`)
  })

  it('place an uploaded mesh, shown from its asset', () => {
    const doc = new Y.Doc()
    expect(addMeshObject(doc, 'm1', { id: 'asset-1', filename: 'bracket.v2.stl', blob_key: 'k' },
                         'alice')).toBe(true)
    const [o] = objectsOf(doc)
    expect(o.name).toBe('bracket.v2')
    expect(meshUrl(o)).toBe('/api/v1/meshes/asset-1/export?format=glb&encoding=meshopt')
    expect(addMeshObject(doc, 'm1', { id: 'a2', filename: 'x.stl', blob_key: 'k2' }, 'alice'))
      .toBe(false)
  })

  it('duplicate to a copy that shows the same mesh', () => {
    const doc = docWith(JOB, { name: 'cup', stage: 'final', blob: 'b', locked: true,
                              transform: { position: [1, 2, 3], rotation: [0, 0, 0, 1], scale: [2, 2, 2] } })
    expect(duplicateObject(doc, JOB, 'copy-1', 'bob')).toBe(true)
    const copy = objectsOf(doc).find((o) => o.id === 'copy-1')!
    expect(copy.name).toBe('cup 2')
    expect(copy.transform.position).toEqual([2, 2, 3])
    expect(copy.transform.scale).toEqual([2, 2, 2])
    expect((doc.getMap('objects').get('copy-1') as Y.Map<unknown>).has('transform')).toBe(false)
    expect(copy.locked).toBe(false)
    expect(copy.createdBy).toBe('bob')
    expect(meshUrl(copy)).toBe(meshUrl(objectsOf(doc).find((o) => o.id === JOB)!))
    expect(duplicateObject(doc, 'missing', 'copy-2', 'bob')).toBe(false)
    expect(duplicateObject(doc, JOB, 'copy-1', 'bob')).toBe(false) // the id is taken
  })

  it('number copies of copies and move them by the offset given', () => {
    const doc = docWith('o', { name: 'cube', transform: { position: [1, 0, 2] } })
    expect(duplicateObject(doc, 'o', 'c1', 'bob', [30, 0])).toBe(true)
    expect(duplicateObject(doc, 'c1', 'c2', 'bob', [30, 5])).toBe(true)
    const byId = new Map(objectsOf(doc).map((o) => [o.id, o]))
    expect(byId.get('c1')!.name).toBe('cube 2')
    expect(byId.get('c2')!.name).toBe('cube 3')
    expect(byId.get('c1')!.transform.position).toEqual([31, 0, 2])
    expect(byId.get('c2')!.transform.position).toEqual([61, 0, 7])
  })

  it('number a second import of one file and place it where asked', () => {
    const doc = new Y.Doc()
    const mesh = { id: 'a', filename: 'cube.stl', blob_key: 'k' }
    addMeshObject(doc, 'm1', mesh, 'alice')
    addMeshObject(doc, 'm2', mesh, 'alice', [12, 0, -3])
    const byId = new Map(objectsOf(doc).map((o) => [o.id, o]))
    expect(byId.get('m1')!.name).toBe('cube')
    expect(byId.get('m2')!.name).toBe('cube 2')
    expect(byId.get('m2')!.transform.position).toEqual([12, 0, -3])
  })

  it('delete objects in one transaction, all but the locked ones', () => {
    const doc = docWith('a', { name: 'a' })
    const objects = doc.getMap('objects')
    objects.set('b', new Y.Map(Object.entries({ name: 'b' })))
    objects.set('c', new Y.Map(Object.entries({ name: 'c', locked: true })))
    let transactions = 0
    doc.on('afterTransaction', () => { transactions += 1 })
    const result = deleteObjects(doc, ['a', 'b', 'c', 'gone'])
    expect(result).toEqual({ deleted: ['a', 'b'], locked: ['c'] })
    expect([...objects.keys()]).toEqual(['c'])
    expect(transactions).toBe(1)
    expect(deleteObjects(doc, ['c'])).toEqual({ deleted: [], locked: ['c'] })
    expect(transactions).toBe(1) // nothing to delete: no transaction
  })

  it('show a mesh asset once a mesh job replaced the generated stage', () => {
    const generated = objectFromFields(JOB, { stage: 'final', asset: 'image-1', blob: 'b1' })
    expect(meshUrl(generated)).toBe(`/api/v1/jobs/${JOB}/stages/final.glb?encoding=meshopt`)
    const repaired = objectFromFields(JOB, { stage: '', asset: 'mesh-2', blob: 'b2' })
    expect(meshUrl(repaired)).toBe('/api/v1/meshes/mesh-2/export?format=glb&encoding=meshopt')
    expect(meshUrl(objectFromFields('x', { name: 'empty' }))).toBeNull()
  })

  it('have no mesh URL without a job', () => {
    expect(meshUrl(objectFromFields('lamp', { name: 'lamp' }))).toBeNull()
  })

  it('read time-travel snapshots', () => {
    const list = objectsOfSnapshot({ objects: { b: { name: 'b' }, a: { name: 'a', visible: false } } })
    expect(list.map((o) => [o.id, o.visible])).toEqual([['a', false], ['b', true]])
  })
})

describe('euler ↔ quaternion', () => {
  it('round-trips', () => {
    for (const e of [[0, 0, 0], [90, 0, 0], [10, 20, 30], [-45, 60, 170]] as const) {
      const back = quatToEulerDeg(eulerDegToQuat([...e]))
      back.forEach((v, i) => expect(v).toBeCloseTo(e[i], 3))
    }
  })

  it('gives unit quaternions', () => {
    const q = eulerDegToQuat([33, -12, 80])
    expect(Math.hypot(...q)).toBeCloseTo(1, 9)
  })
})

describe('reading what a document stored before the scene schema holds', () => {
  it('skips values that are not objects and fields that do not conform', () => {
    const doc = new Y.Doc()
    const objects = doc.getMap<unknown>('objects')
    let deep: unknown = []
    for (let i = 0; i < 3000; i++) deep = [deep]
    doc.transact(() => {
      objects.set('evil', new Uint8Array([1, 2, 3]))
      objects.set('sub', new Y.Doc())
      objects.set('xml', new Y.XmlFragment())
      objects.set('lamp', new Y.Map<unknown>([
        ['name', 'lamp'], ['visible', 'yes'], ['blob', 'b'.repeat(5000)], ['tower', deep],
        ['thumbnail', new Uint8Array([1])], ['parts', new Y.Map([['a', 1]])],
        ['transform', { position: [1, 2, 3], rotation: [0, 0, 0, 1], scale: [1, 1, 1] }],
        ['caption', 'a note'],
      ]))
    })
    const [lamp, ...rest] = objectsOf(doc)
    expect(rest).toEqual([])
    expect(lamp).toMatchObject({ id: 'lamp', name: 'lamp', visible: true, blob: null })
    expect(lamp.transform.position).toEqual([1, 2, 3])
  })

  it('duplicates only the fields the server takes', () => {
    const doc = docWith('o', { name: 'o', caption: 'kept', thumbnail: new Uint8Array([1]) })
    expect(duplicateObject(doc, 'o', 'copy', 'u1')).toBe(true)
    const copy = (doc.getMap('objects').get('copy') as Y.Map<unknown>).toJSON()
    expect(copy.caption).toBe('kept')
    expect('thumbnail' in copy).toBe(false)
  })
})
