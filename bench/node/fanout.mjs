// Fan-out latency of a y-websocket server, as issue 20 defines the workload.
//
//   node bench/node/fanout.mjs URL ROOM TOKEN N UPDATES INTERVAL_MS [WARMUP]
//
// N stock yjs clients (WebsocketProvider) in this one process join ROOM on URL (TOKEN "-" for
// none). Once all are synced they take turns adding a new key to the Y.Map "meta" (a scene
// setting, which the studio's scene schema allows: it refuses roots a scene does not have),
// "e<seq>" set to {sender, seq, t}, one update every INTERVAL_MS, UPDATES in all, after WARMUP
// updates (default 0) on the same schedule that are not measured: the first edits in a fresh
// room run cold code in every process (the clients' too), which is start-up, not fan-out. Every
// edit adds a key, so the document grows with each one, as a scene does when people add to it.
// The sender notes the time just before its local change and, after it, its own clock in the
// document's state vector; an edit has arrived at another client once that client's state
// vector reaches the clock, checked after every transaction the client applies from the server
// (a server may store and send edits that queued up together as one update: each is timed when
// that update lands). One clock, one process, so the samples need no clock sync (the receivers
// share one event loop, as browsers on one machine would not: the same for every server
// measured, so comparisons stay fair). With N = 1 there is nobody to deliver to, so one extra
// client joins that only listens: "one collaborator" is one editor watched by one other screen.
//
// stdout, one JSON object a line: {"event":"synced", first_synced_ms, all_synced_ms} when every
// client is synced (client 0 connects first: its time is the room's load time),
// {"event":"start"} just before the first measured update (the runner starts its CPU meter
// there),
// then {"event":"result", ...} once every delivery arrived or the drain timed out: every
// delivery's latency in "samples", each edit's first delivery (to whichever client got it
// first) in "first_samples", and how long after the first the later receivers got an edit in
// "later_receivers_ms" (see laterReceivers).
//
// The packages come from tests/node/node_modules through createRequire, loading the CommonJS
// builds of yjs, y-websocket and ws together so that only one copy of yjs is ever loaded.

import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'

const require = createRequire(new URL('../../tests/node/package.json', import.meta.url))
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const WebSocket = require('ws')

const SYNC_TIMEOUT_MS = 120000
const DRAIN_TIMEOUT_MS = 5000

// Resolves once the line is flushed: stdout to a pipe is asynchronous, and process.exit would
// otherwise cut a long result line short.
const emit = (message) => new Promise((resolve) => process.stdout.write(JSON.stringify(message) + '\n', resolve))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
console.log = console.error // library logging must not corrupt the JSON lines
process.setMaxListeners(0) // one exit listener per provider

const parseArgs = (argv) => {
  if (argv.length !== 6 && argv.length !== 7) {
    process.stderr.write('usage: fanout.mjs URL ROOM TOKEN N UPDATES INTERVAL_MS [WARMUP]\n')
    process.exit(2)
  }
  const [url, room, token, n, updates, interval, warmup = '0'] = argv
  return { url, room, token: token === '-' ? null : token, n: Number(n), updates: Number(updates), interval: Number(interval), warmup: Number(warmup) }
}

/** One client: its doc, provider, the measured edits on their way to it, and how many
 * arrived. Arrival times go to the shared `samples`. */
const startClient = (index, { url, room, token }, samples, firstSamples) => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    params: token == null ? {} : { token },
    maxBackoffTime: 1000
  })
  const map = doc.getMap('meta') // a scene setting: the studio refuses roots a scene does not have
  const awaited = new Set() // edits of the others sent and not yet in this document
  let arrived = 0
  let closes = 0
  let syncedAt = null
  provider.on('sync', (synced) => { if (synced && syncedAt === null) syncedAt = performance.now() })
  provider.on('connection-close', (event) => { if (event != null) closes++ })
  doc.on('afterTransaction', (transaction) => {
    if (transaction.local || awaited.size === 0) return
    const now = performance.now()
    for (const edit of awaited) {
      if (Y.getState(doc.store, edit.client) >= edit.clock) {
        awaited.delete(edit)
        arrived++
        samples.push(now - edit.t)
        edit.arrivals.push(now)
        if (!edit.reached) {
          edit.reached = true
          firstSamples.push(now - edit.t)
        }
      }
    }
  })
  return { index, doc, provider, map, awaited, arrived: () => arrived, closes: () => closes, syncedAt: () => syncedAt }
}

const waitSynced = async (clients) => {
  const deadline = performance.now() + SYNC_TIMEOUT_MS
  while (clients.some((c) => !c.provider.synced)) {
    if (performance.now() > deadline) throw new Error('clients did not sync in time')
    await sleep(10)
  }
}

/** Send updates `from` .. `to` - 1 on a fixed schedule (not interval after interval), as the
 * issue asks; negative numbers are the warm-up's. */
const runUpdates = async (clients, { n, interval }, from, to, edits = []) => {
  const began = performance.now()
  for (let seq = from; seq < to; seq++) {
    const wait = began + (seq - from) * interval - performance.now()
    if (wait > 0) await sleep(wait)
    const sender = clients[((seq % n) + n) % n]
    const t = performance.now()
    sender.map.set(keyOf(seq), { sender: sender.index, seq, t })
    if (seq < 0) continue
    const edit = { client: sender.doc.clientID, clock: Y.getState(sender.doc.store, sender.doc.clientID), t, reached: false, arrivals: [] }
    edits.push(edit)
    for (const c of clients) if (c !== sender) c.awaited.add(edit)
  }
}

const keyOf = (seq) => `e${seq}`

/** The edits' keys a client's map holds, each with its sender and number, as one string. */
const editsHeld = (map) => Array.from(map.entries())
  .filter(([key]) => /^e-?\d+$/.test(key))
  .map(([key, value]) => `${key}=${value?.sender}/${value?.seq}`)
  .sort()
  .join(',')

const delivered = (clients) => clients.reduce((sum, c) => sum + c.arrived(), 0)

const drain = async (clients, expected) => {
  const deadline = performance.now() + DRAIN_TIMEOUT_MS
  while (delivered(clients) < expected && performance.now() < deadline) await sleep(10)
}

/** For the k-th receiver of an edit (k = 2 .. N-1 of an edit's N-1 receivers, in the order they
 * got it), the p50 over the edits every receiver got of how long after the edit's first
 * receiver it arrived. The receivers share this process's one event loop, so each waits for
 * the ones before it to decode the same frame: what a server adds to that shows here as the
 * difference between servers. */
const laterReceivers = (edits, receivers) => {
  const complete = edits.filter((e) => e.arrivals.length === receivers)
    .map((e) => e.arrivals.slice().sort((a, b) => a - b))
  return Array.from({ length: receivers - 1 }, (_, k) =>
    percentile(complete.map((arrivals) => arrivals[k + 1] - arrivals[0]).sort((a, b) => a - b), 50))
}

const percentile = (sorted, p) => sorted.length === 0
  ? null
  : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]

const main = async () => {
  const args = parseArgs(process.argv.slice(2))
  const samples = []
  const firstSamples = [] // per edit, its first arrival at any other client
  const began = performance.now()
  const total = Math.max(args.n, 2)
  const clients = Array.from({ length: total }, (_, i) => startClient(i, args, samples, firstSamples))
  await waitSynced(clients)
  emit({
    event: 'synced',
    first_synced_ms: clients[0].syncedAt() - began,
    all_synced_ms: performance.now() - began
  })
  await sleep(500 + 5 * args.n) // let the join-time awareness storm settle
  if (args.warmup > 0) {
    await runUpdates(clients, args, -args.warmup, 0)
    await sleep(args.interval)
  }
  emit({ event: 'start' })
  const edits = []
  await runUpdates(clients, args, 0, args.updates, edits)
  const expected = args.updates * (total - 1)
  await drain(clients, expected)
  samples.sort((a, b) => a - b)
  const allKeys = Array.from({ length: args.warmup + args.updates }, (_, i) => keyOf(i - args.warmup))
  await emit({
    event: 'result',
    n: args.n,
    updates: args.updates,
    expected,
    received: samples.length,
    missed: expected - samples.length, // never arrived: lost
    // Every client holds every edit's key (warm-up's included), with the same sender and
    // number as client 0. Compared by sender and number: a server that re-encodes the update,
    // as pycrdt does, may hand the value's keys over in another order.
    converged: allKeys.every((key) => clients[0].map.has(key)) &&
      clients.every((c) => editsHeld(c.map) === editsHeld(clients[0].map)),
    p50_ms: percentile(samples, 50),
    p99_ms: percentile(samples, 99),
    max_ms: samples.length ? samples[samples.length - 1] : null,
    reconnects: clients.reduce((sum, c) => sum + c.closes(), 0),
    samples: samples.map((s) => Math.round(s * 100) / 100),
    first_samples: firstSamples.map((s) => Math.round(s * 100) / 100),
    later_receivers_ms: laterReceivers(edits, total - 1)
  })
  for (const c of clients) c.provider.destroy()
  await sleep(100)
  process.exit(0)
}

main().catch((error) => {
  process.stderr.write(`fanout: ${error.stack ?? error}\n`)
  process.exit(1)
})
