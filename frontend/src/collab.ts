/**
 * One project's shared scene: a Y.Doc synced over the y-websocket protocol at
 * /ws/projects/{id} (session cookie), presence through awareness, and the studio's NOTICE
 * messages. y-websocket reconnects by itself and resends edits made while offline.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { MessageType, describeClose, parseNotice, type Notice } from './protocol'
import { parseTransform, type Transform } from './scene'

export type ConnectionStatus = 'connecting' | 'connected' | 'disconnected' | 'refused'

export interface PresenceUser {
  name: string
  color: string
}

/** A gizmo drag in progress: shared through awareness (not stored) until it is released. */
export interface Drag {
  id: string
  transform: Transform
}

/** Where someone looks from: an orbit camera (angles in radians, target in scene units). */
export interface CameraView {
  alpha: number
  beta: number
  radius: number
  target: [number, number, number]
}

export interface Peer {
  clientId: number
  user: PresenceUser
  selection: string | null
  drag: Drag | null
  camera: CameraView | null
  self: boolean
}

export function parseCamera(value: unknown): CameraView | null {
  if (!value || typeof value !== 'object') return null
  const c = value as Record<string, unknown>
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
  const target = c.target
  if (!finite(c.alpha) || !finite(c.beta) || !finite(c.radius) || c.radius <= 0 ||
      !Array.isArray(target) || target.length !== 3 || !target.every(finite)) return null
  return { alpha: c.alpha, beta: c.beta, radius: c.radius,
           target: [target[0], target[1], target[2]] }
}

/** Where an orbit camera sits: the target plus the radius along the angles (Y up). */
export function cameraPosition(c: CameraView): [number, number, number] {
  const [x, y, z] = c.target
  return [x + c.radius * Math.cos(c.alpha) * Math.sin(c.beta), y + c.radius * Math.cos(c.beta),
          z + c.radius * Math.sin(c.alpha) * Math.sin(c.beta)]
}

export interface CollabState {
  status: ConnectionStatus
  synced: boolean
  /** Why the server refused the connection for good (4401/4403/4404), if it did. */
  refusal: string | null
  /** Whether local edits are waiting to reach the server (made while offline). */
  pending: boolean
  /** The connection was up and is lost: from the moment that is known until synced again. */
  offline: boolean
}

/** A connection that has been silent this long is taken for dead (see `SceneSession.watch`):
 *  the user is told within 2 s, not after y-websocket's own 30 s. */
export const SILENT_MS = 1800
/** After this long without a message, ask the server for presence (answered at once, so a
 *  live connection is never silent for `SILENT_MS`); a busy connection sends nothing extra. */
export const HEARTBEAT_MS = 400
export const WATCH_MS = 200

/** Whether a connected socket is dead: silent for `SILENT_MS` since it last heard from the
 *  server or since the page was last too busy to run the watch (a long task: messages that
 *  came meanwhile may still wait behind the watch in the event loop, and a background tab
 *  runs timers seldom), whichever is later. */
export function isSilent(lastMessage: number, awakeSince: number, now: number): boolean {
  return now - Math.max(lastMessage, awakeSince) > SILENT_MS
}

const PALETTE = ['#e91e63', '#2196f3', '#4caf50', '#ff9800', '#9c27b0', '#00bcd4', '#cddc39',
  '#ff5722']

/** A stable colour for a user name. */
export function colorFor(name: string): string {
  let h = 0
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0
  return PALETTE[h % PALETTE.length]
}

export function wsBase(location: Location = window.location): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/projects`
}

type Listener = () => void

function parseDrag(value: unknown): Drag | null {
  if (!value || typeof value !== 'object') return null
  const d = value as Record<string, unknown>
  return typeof d.id === 'string' ? { id: d.id, transform: parseTransform(d.transform) } : null
}

/** Whether two lists of peers show the same: one's own camera is left out, since nothing
 *  shows it (markers and following are for others' cameras) and it changes five times a
 *  second while one orbits, each change a new list that re-rendered the whole workspace
 *  (its outliner, the viewport's selection outlines and camera markers) mid-orbit. */
export function samePeers(a: readonly Peer[], b: readonly Peer[]): boolean {
  const shown = (peers: readonly Peer[]): string =>
    JSON.stringify(peers.map((p) => (p.self ? { ...p, camera: null } : p)))
  return a.length === b.length && shown(a) === shown(b)
}

/** Objects as collaborators are dragging them right now (their drags override the document). */
export function withDrags<T extends { id: string; transform: Transform }>(
  objects: T[], peers: Peer[],
): T[] {
  const drags = new Map<string, Transform>()
  for (const p of peers) if (!p.self && p.drag) drags.set(p.drag.id, p.drag.transform)
  if (!drags.size) return objects
  return objects.map((o) => {
    const t = drags.get(o.id)
    return t ? { ...o, transform: t } : o
  })
}

export class SceneSession {
  readonly doc = new Y.Doc()
  readonly provider: WebsocketProvider
  private state: CollabState = { status: 'connecting', synced: false, refusal: null, pending: false,
                                 offline: false }
  private watchdog: ReturnType<typeof setInterval>
  private lastWatch = Date.now()
  private awakeSince = Date.now()
  private readonly onBrowserOffline = (): void => this.drop()
  private listeners = new Set<Listener>()
  private noticeListeners = new Set<(n: Notice) => void>()

  constructor(readonly projectId: string, user: PresenceUser) {
    this.provider = new WebsocketProvider(wsBase(), projectId, this.doc, { disableBc: true })
    this.provider.messageHandlers[MessageType.NOTICE] = (_enc, decoder) => {
      const notice = parseNotice(decoding.readVarUint8Array(decoder))
      if (notice) this.noticeListeners.forEach((l) => l(notice))
    }
    this.provider.awareness.setLocalStateField('user', user)
    this.provider.awareness.setLocalStateField('selection', null)
    this.provider.on('status', ({ status }: { status: string }) => {
      if (this.state.status === 'refused') return
      if (status === 'connected') {
        // Re-announce presence with a newer clock: peers dropped us when the socket closed
        // and would otherwise ignore our unchanged state until the next renewal (15 s).
        const awareness = this.provider.awareness
        awareness.setLocalState({ ...(awareness.getLocalState() ?? {}) })
      }
      if (status === 'disconnected') this.forgetOthers()
      const lost = status === 'disconnected' || this.state.offline
      this.set({ status: status as ConnectionStatus, offline: lost })
    })
    this.provider.on('sync', (synced: boolean) => {
      this.set({ synced, pending: synced ? false : this.state.pending,
                 offline: synced ? false : this.state.offline })
    })
    this.watchdog = setInterval(() => this.watch(), WATCH_MS)
    window.addEventListener('offline', this.onBrowserOffline)
    this.provider.on('closed', ({ code, reason }: { code: number; reason: string }) => {
      this.set({ status: 'refused', refusal: describeClose(code, reason) })
    })
    this.doc.on('update', (_u: Uint8Array, origin: unknown) => {
      if (origin !== this.provider && !this.provider.wsconnected) this.set({ pending: true })
    })
  }

  get snapshot(): CollabState {
    return this.state
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  onNotice(listener: (n: Notice) => void): () => void {
    this.noticeListeners.add(listener)
    return () => this.noticeListeners.delete(listener)
  }

  setSelection(id: string | null): void {
    this.provider.awareness.setLocalStateField('selection', id)
  }

  setDrag(drag: Drag | null): void {
    this.provider.awareness.setLocalStateField('drag', drag)
  }

  private lastCamera = 0

  /** Share where this user looks from (at most a few times a second; awareness is not
   *  stored, so this costs the log nothing). */
  setCamera(camera: CameraView): void {
    const now = Date.now()
    if (now - this.lastCamera < 200) return
    this.lastCamera = now
    this.provider.awareness.setLocalStateField('camera', camera)
  }

  peers(): Peer[] {
    const own = this.doc.clientID
    const peers: Peer[] = []
    this.provider.awareness.getStates().forEach((state, clientId) => {
      const user = state.user as PresenceUser | undefined
      if (!user || typeof user.name !== 'string') return
      const selection = typeof state.selection === 'string' ? state.selection : null
      peers.push({ clientId, user, selection, drag: parseDrag(state.drag),
                   camera: parseCamera(state.camera), self: clientId === own })
    })
    return peers.sort((a, b) => Number(b.self) - Number(a.self) || a.user.name.localeCompare(b.user.name))
  }

  /** Keeps a quiet connection talking (a presence query the server answers) and drops one
   *  that stopped answering: a vanished network closes no socket, and y-websocket alone
   *  notices only after 30 s of silence, showing others' presence all the while. */
  private watch(): void {
    const provider = this.provider
    const now = Date.now()
    if (now - this.lastWatch > 2 * WATCH_MS) this.awakeSince = now
    this.lastWatch = now
    // Not before the first sync of a connection: a large scene may take a while to arrive.
    if (!provider.wsconnected || !provider.synced || !provider.ws) return
    if (isSilent(provider.wsLastMessageReceived, this.awakeSince, now)) {
      this.drop()
    } else if (now - provider.wsLastMessageReceived > HEARTBEAT_MS &&
               provider.ws.readyState === WebSocket.OPEN && provider.ws.bufferedAmount === 0) {
      const query = encoding.createEncoder()
      encoding.writeVarUint(query, MessageType.QUERY_AWARENESS)
      provider.ws.send(encoding.toUint8Array(query))
    }
  }

  /** Forgets the others' presence clocks along with their states (y-websocket drops only the
   *  states): otherwise their unchanged states, sent again on reconnection, read as old and
   *  are ignored, and they stay invisible until their next renewal (up to 15 s). */
  private forgetOthers(): void {
    const awareness = this.provider.awareness
    for (const id of [...awareness.meta.keys()]) {
      if (id !== this.doc.clientID) awareness.meta.delete(id)
    }
  }

  /** Closes a dead connection at once and starts reconnecting: y-websocket then forgets the
   *  others' presence and reports 'disconnected', and resends local edits once back. */
  private drop(): void {
    if (this.state.status === 'refused' || !this.provider.shouldConnect) return
    this.set({ offline: true })
    this.provider.disconnect()
    this.provider.connect()
  }

  destroy(): void {
    clearInterval(this.watchdog)
    window.removeEventListener('offline', this.onBrowserOffline)
    this.provider.awareness.setLocalState(null)
    this.provider.destroy()
    this.doc.destroy()
    this.listeners.clear()
    this.noticeListeners.clear()
  }

  private set(patch: Partial<CollabState>): void {
    this.state = { ...this.state, ...patch }
    this.listeners.forEach((l) => l())
  }
}
