// Real Yjs clients for the Python tests: one process runs any number of named clients, each a
// Y.Doc with a y-websocket WebsocketProvider, and is driven over stdin/stdout with JSON lines.
//
// Every command line gets exactly one reply line on stdout: {"ok": true, ...} or
// {"ok": false, "error": "..."}. Commands run one at a time, in order. Anything unsolicited
// (status changes, close events, library logging) goes to stderr, never to stdout.
//
// The scene document: a top-level Y.Map `objects` (object id -> Y.Map of fields) and a Y.Map
// `meta`. See tests/yjs_clients.py for the Python side and the list of commands.

import readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'

const reply = (message) => process.stdout.write(JSON.stringify(message) + '\n')
const log = (...args) => process.stderr.write(`[peer] ${args.join(' ')}\n`)
console.log = console.error // keep library logging out of the reply stream

/** name -> { doc, provider, closes: [...], lastError } */
const clients = new Map()

const client = (name) => {
  const found = clients.get(name)
  if (found === undefined) throw new Error(`no client named ${JSON.stringify(name)}`)
  return found
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// The studio's NOTICE extension (core/collab/protocol.py): a stock client logs it as an unknown
// message type and carries on; a client connected with `notices: true` keeps each one instead.
const NOTICE = 100

const connect = ({
  client: name, url, room, token, params = {}, max_backoff_ms: maxBackoff = 1000, notices = false
}) => {
  if (clients.has(name)) throw new Error(`client ${JSON.stringify(name)} already exists`)
  if (!url || !room) throw new Error('connect needs url and room')
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, String(room), doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    params: token == null ? { ...params } : { ...params, token: String(token) },
    maxBackoffTime: maxBackoff
  })
  const entry = { doc, provider, closes: [], terminal: null, lastError: null, notices: [] }
  if (notices) {
    provider.messageHandlers[NOTICE] = (encoder, decoder) => {
      entry.notices.push(JSON.parse(new TextDecoder().decode(decoding.readVarUint8Array(decoder))))
    }
  }
  provider.on('status', ({ status }) => log(name, 'status', status))
  provider.on('connection-close', (event) => {
    // `event` is null when the client closed the socket itself (disconnect, watchdog)
    if (event == null) return
    entry.closes.push({ code: event.code, reason: String(event.reason ?? ''), clean: !!event.wasClean })
    log(name, 'socket closed', event.code, event.reason)
  })
  provider.on('closed', (event) => { entry.terminal = { code: event.code, reason: event.reason } })
  provider.on('connection-error', (event) => {
    entry.lastError = String(event?.message ?? event?.error?.message ?? event?.type ?? 'error')
    log(name, 'connection error', entry.lastError)
  })
  clients.set(name, entry)
  return { client_id: doc.clientID }
}

const fieldsOf = ({ field, value, fields }) => {
  if (fields !== undefined) return Object.entries(fields)
  if (field === undefined) throw new Error('set needs field and value, or fields')
  return [[field, value]]
}

const commands = {
  ping: () => ({}),

  connect,

  set: (msg) => {
    const { doc } = client(msg.client)
    const objects = doc.getMap('objects')
    doc.transact(() => {
      let object = objects.get(msg.object)
      if (!(object instanceof Y.Map)) {
        object = new Y.Map()
        objects.set(msg.object, object)
      }
      for (const [key, value] of fieldsOf(msg)) object.set(key, value)
    })
    return {}
  },

  // Many objects in one transaction (one update): {object id: {field: value}}.
  set_objects: ({ client: name, objects: batch }) => {
    const { doc } = client(name)
    const objects = doc.getMap('objects')
    doc.transact(() => {
      for (const [id, fields] of Object.entries(batch ?? {})) {
        objects.set(id, new Y.Map(Object.entries(fields)))
      }
    })
    return {}
  },

  // What a hostile collaborator can put into the scene with the stock API (the scene schema's
  // tests): `kind` is bytes (a Uint8Array), subdoc, xml (a Y.XmlFragment), or deep (an
  // object whose field holds arrays nested `depth` deep).
  set_hostile: ({ client: name, object, kind, depth = 3000 }) => {
    const objects = client(name).doc.getMap('objects')
    if (kind === 'bytes') objects.set(object, new Uint8Array([1, 2, 3]))
    else if (kind === 'subdoc') objects.set(object, new Y.Doc())
    else if (kind === 'xml') objects.set(object, new Y.XmlFragment())
    else if (kind === 'deep') {
      let value = []
      for (let i = 0; i < depth; i++) value = [value]
      objects.set(object, new Y.Map([['floors', value]]))
    } else throw new Error(`unknown hostile value ${JSON.stringify(kind)}`)
    return {}
  },

  set_meta: ({ client: name, key, value }) => {
    client(name).doc.getMap('meta').set(key, value)
    return {}
  },

  delete: ({ client: name, object, field }) => {
    const objects = client(name).doc.getMap('objects')
    if (field === undefined) {
      objects.delete(object)
    } else {
      const fields = objects.get(object)
      if (!(fields instanceof Y.Map)) throw new Error(`no object ${JSON.stringify(object)}`)
      fields.delete(field)
    }
    return {}
  },

  disconnect: ({ client: name }) => {
    client(name).provider.disconnect()
    return {}
  },

  reconnect: ({ client: name }) => {
    client(name).provider.connect()
    return {}
  },

  close: ({ client: name }) => {
    const { doc, provider } = client(name)
    provider.destroy()
    doc.destroy()
    clients.delete(name)
    return {}
  },

  awareness: ({ client: name, state }) => {
    client(name).provider.awareness.setLocalState(state ?? null)
    return {}
  },

  awareness_states: ({ client: name }) => {
    const { awareness } = client(name).provider
    return { client_id: awareness.clientID, states: Object.fromEntries(awareness.getStates()) }
  },

  state: ({ client: name }) => {
    const { doc, provider } = client(name)
    return {
      client_id: doc.clientID,
      objects: doc.getMap('objects').toJSON(),
      meta: doc.getMap('meta').toJSON(),
      synced: provider.synced,
      status: provider.wsconnected ? 'connected' : 'disconnected'
    }
  },

  wait_synced: async ({ client: name, timeout_ms: timeout = 5000 }) => {
    const { provider } = client(name)
    const deadline = Date.now() + timeout
    while (!provider.synced) {
      if (Date.now() >= deadline) throw new Error(`client ${name} not synced after ${timeout} ms`)
      await sleep(10)
    }
    return {}
  },

  close_info: ({ client: name }) => {
    const { closes, terminal, lastError, provider } = client(name)
    const last = closes.at(-1) ?? null
    return {
      code: last?.code ?? null,
      reason: last?.reason ?? null,
      closes: closes.length,
      terminal, // {code, reason} once the provider gave up reconnecting (codes 4400-4499)
      last_error: lastError,
      status: provider.wsconnected ? 'connected' : 'disconnected'
    }
  },

  // The notices a client connected with `notices: true` received, oldest first.
  notices: ({ client: name }) => ({ notices: client(name).notices }),

  quit: () => ({})
}

const shutdown = () => {
  for (const { doc, provider } of clients.values()) {
    provider.destroy()
    doc.destroy()
  }
  clients.clear()
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of lines) {
  if (!line.trim()) continue
  let msg
  try {
    msg = JSON.parse(line)
    const handler = Object.hasOwn(commands, msg?.cmd) ? commands[msg.cmd] : null
    if (handler === null) throw new Error(`unknown command ${JSON.stringify(msg?.cmd)}`)
    reply({ ok: true, ...(await handler(msg)) })
  } catch (error) {
    reply({ ok: false, error: String(error?.message ?? error) })
  }
  if (msg?.cmd === 'quit') break
}
shutdown()
process.exit(0)
