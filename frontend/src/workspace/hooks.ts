/** React bindings for a SceneSession: connection state, the objects, and who is online. */
import { useEffect, useMemo, useState, useSyncExternalStore } from 'react'
import * as Y from 'yjs'
import { samePeers, type CollabState, type Peer, type SceneSession } from '../collab'
import { objectsOf, type SceneObject } from '../scene'

export function useCollabState(session: SceneSession): CollabState {
  return useSyncExternalStore(
    (l) => session.subscribe(l),
    () => session.snapshot,
  )
}

/** The scene's objects, read through the same kind of store as `useCollabState`: both are
 *  then rendered together, so the render in which `synced` turns true already holds the objects
 *  of that sync (a state update here would lag one render behind it, and framing on open, which
 *  waits for "the objects of the first sync", would wait for none). */
export function useSceneObjects(session: SceneSession): SceneObject[] {
  const store = useMemo(() => objectsStore(session.doc), [session])
  return useSyncExternalStore(store.subscribe, store.snapshot)
}

function objectsStore(doc: Y.Doc): { subscribe: (l: () => void) => () => void; snapshot: () => SceneObject[] } {
  const map = doc.getMap<unknown>('objects')
  let current = objectsOf(doc)
  return {
    subscribe(listener) {
      const update = (): void => {
        current = objectsOf(doc)
        listener()
      }
      map.observeDeep(update)
      update() // whatever changed between the first render and this subscription
      return () => map.unobserveDeep(update)
    },
    snapshot: () => current,
  }
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
