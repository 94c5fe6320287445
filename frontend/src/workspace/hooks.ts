/** React bindings for a SceneSession: connection state, the objects, and who is online. */
import { useEffect, useState, useSyncExternalStore } from 'react'
import * as Y from 'yjs'
import { samePeers, type CollabState, type Peer, type SceneSession } from '../collab'
import { objectsOf, type SceneObject } from '../scene'

export function useCollabState(session: SceneSession): CollabState {
  return useSyncExternalStore(
    (l) => session.subscribe(l),
    () => session.snapshot,
  )
}

export function useSceneObjects(session: SceneSession): SceneObject[] {
  const [objects, setObjects] = useState<SceneObject[]>(() => objectsOf(session.doc))
  useEffect(() => {
    const map = session.doc.getMap<unknown>('objects')
    const update = (): void => setObjects(objectsOf(session.doc))
    map.observeDeep(update)
    update()
    return () => map.unobserveDeep(update)
  }, [session])
  return objects
}

export function usePeers(session: SceneSession): Peer[] {
  const [peers, setPeers] = useState<Peer[]>(() => session.peers())
  useEffect(() => {
    const awareness = session.provider.awareness
    const update = (): void => {
      const next = session.peers()
      setPeers((shown) => (samePeers(shown, next) ? shown : next))
    }
    awareness.on('change', update)
    update()
    return () => awareness.off('change', update)
  }, [session])
  return peers
}

/** Calls `fn` (debounced) whenever the shared document changes. */
export function useDocChanges(doc: Y.Doc, fn: () => void, delayMs = 400): void {
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const onUpdate = (): void => {
      clearTimeout(timer)
      timer = setTimeout(fn, delayMs)
    }
    doc.on('update', onUpdate)
    return () => {
      clearTimeout(timer)
      doc.off('update', onUpdate)
    }
  }, [doc, fn, delayMs])
}
