/** The project timeline, read page by page (`GET .../timeline?after=&limit=`). */

export interface TimelineEvent {
  position: number
  at: string
  actor: string | null
  /** The actor's username, joined by the server (null for the studio itself). */
  actor_name?: string | null
  kind: string
  summary: string
}

/** Who did it, as a person reads it: the username the server joined, else the member's name,
 *  else what they are; never a raw user id. Empty for the studio itself (a worker, the
 *  server), whose lines read on their own ("repair of teapot: score 58 → 82"). */
export function actorLabel(e: TimelineEvent, names: Map<string, string>): string {
  if (e.actor_name) return e.actor_name
  if (e.actor && names.has(e.actor)) return names.get(e.actor) as string
  return e.actor && MEMBER_ID.test(e.actor) ? 'a former member' : ''
}

/** The line as the timeline shows it: "alice moved Teapot". */
export function timelineLine(e: TimelineEvent, names: Map<string, string>): string {
  const who = actorLabel(e, names)
  return who ? `${who} ${e.summary}` : e.summary.charAt(0).toUpperCase() + e.summary.slice(1)
}

const MEMBER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface TimelinePage {
  events: TimelineEvent[]
  next: number | null
}

export interface TimelineState {
  events: TimelineEvent[]
  /** The position to ask after for the next page (0 before the first). */
  cursor: number
  /** Whether the server said there is more to read now. */
  more: boolean
}

export const EMPTY_TIMELINE: TimelineState = { events: [], cursor: 0, more: true }

/** Appends a page, dropping any event already held (a refresh may overlap). */
export function mergePage(state: TimelineState, page: TimelinePage): TimelineState {
  const seen = new Set(state.events.map((e) => e.position))
  const fresh = page.events.filter((e) => !seen.has(e.position))
  const events = [...state.events, ...fresh].sort((a, b) => a.position - b.position)
  const last = events.length ? events[events.length - 1].position : state.cursor
  return { events, cursor: Math.max(state.cursor, last), more: page.next !== null }
}

export type PageFetcher = (after: number, limit: number) => Promise<TimelinePage>

/**
 * Reads pages from the cursor until the server has no more (or `maxPages` were read), so a
 * refresh after new edits only fetches what is new.
 */
export async function readForward(
  state: TimelineState, fetchPage: PageFetcher, limit = 200, maxPages = 20,
): Promise<TimelineState> {
  let current = state
  for (let i = 0; i < maxPages; i++) {
    const page = await fetchPage(current.cursor, limit)
    current = mergePage(current, page)
    if (page.next === null) break
  }
  return current
}

/** The slider's stops: every event position; the last one is "now". */
export function sliderStops(state: TimelineState): number[] {
  return state.events.map((e) => e.position)
}

/** The event nearest to a slider index, clamped. */
export function eventAt(state: TimelineState, index: number): TimelineEvent | null {
  if (!state.events.length) return null
  const i = Math.min(Math.max(Math.round(index), 0), state.events.length - 1)
  return state.events[i]
}
