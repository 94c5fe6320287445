/**
 * The design assistant's conversation as data: the messages the server stores, the answer a
 * stream builds line by line, and what a suggestion's button says. Pure, so that the panel's
 * behaviour is tested without a browser.
 */
import type { MeshJobPhase } from '../meshJobs'

/** A figure an answer used, as the server measured it (`unit` null for yes/no and counts). */
export interface Fact {
  name: string
  value: number | string | boolean | null
  unit: string | null
  source: string
}

/** One figure's change: predicted (a suggestion's `expected`) or measured (its `actual`). */
export interface Effect {
  name: string
  unit: string | null
  before: number | null
  after: number | null
}

/** `proposed` until applied, then its latest job's state (the server may say `applied` or
 *  `running` too, or its job's own `requested`, `started`, `cancelled`). */
export type SuggestionState = 'proposed' | 'applied' | 'running' | 'requested' | 'started' |
  'succeeded' | 'failed' | 'cancelled'

const IN_PROGRESS = new Set<SuggestionState>(['applied', 'running', 'requested', 'started'])

/** Whether the suggestion's job is under way, as the server says. */
export function inProgress(s: Suggestion): boolean {
  return IN_PROGRESS.has(s.state)
}

export interface Suggestion {
  id: string
  title: string
  operation: string
  params: Record<string, unknown>
  reason: string
  expected: Effect[]
  state: SuggestionState
  job_id: string | null
  mesh_id?: string | null
  actual: Effect[] | null
}

export interface SimilarDesign {
  asset_id: string
  project_id: string
  project_name: string
  filename: string
  distance: number
  thumbnail_url: string | null
}

export interface AssistantMessage {
  id: string
  project_id: string
  asset_id: string | null
  position: number
  asked_by: string
  asked_by_name: string
  at: string
  question: string
  intent: string
  answer: string
  facts: Fact[]
  suggestions: Suggestion[]
  similar: SimilarDesign[]
  phrased_by: string
}

// ------------------------------------------------------------------ the streamed answer

/** An answer while its stream arrives: the text so far, then the stored message or a refusal. */
export interface Draft {
  question: string
  text: string
  message: AssistantMessage | null
  error: string | null
}

export function startDraft(question: string): Draft {
  return { question, text: '', message: null, error: null }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The readable reason of a problem+json object (its detail, else its title). */
function problemText(problem: unknown): string {
  if (!isRecord(problem)) return 'The assistant stopped answering.'
  const detail = typeof problem.detail === 'string' ? problem.detail : ''
  const title = typeof problem.title === 'string' ? problem.title : ''
  return detail || title || 'The assistant stopped answering.'
}

/**
 * The draft after one NDJSON line: a `token` adds its text, the `answer` line (always the last)
 * brings the stored message, whose text replaces the tokens, an `error` line the reason the
 * answer stopped. Lines of other types are ignored (a newer server may send more); a line after
 * the answer or an error changes nothing.
 */
export function foldLine(draft: Draft, line: unknown): Draft {
  if (!isRecord(line) || draft.message || draft.error) return draft
  if (line.type === 'token' && typeof line.text === 'string') {
    return { ...draft, text: draft.text + line.text }
  }
  if (line.type === 'answer' && isRecord(line.message)) {
    const message = line.message as unknown as AssistantMessage
    return { ...draft, text: message.answer, message }
  }
  if (line.type === 'error') return { ...draft, error: problemText(line.problem) }
  return draft
}

/** The draft once its stream has ended: a stream cut before its answer is an error. */
export function endDraft(draft: Draft): Draft {
  if (draft.message || draft.error) return draft
  return { ...draft, error: 'The answer stream ended before the answer was complete.' }
}

// ------------------------------------------------------------------ the conversation

/** `known` with `incoming` merged in: the same id is replaced (the server's is current), and
 *  the whole stays in log order. */
export function mergeMessages(known: AssistantMessage[],
                              incoming: AssistantMessage[]): AssistantMessage[] {
  if (!incoming.length) return known
  const byId = new Map(known.map((m) => [m.id, m]))
  for (const m of incoming) byId.set(m.id, m)
  return [...byId.values()].sort((a, b) => a.position - b.position)
}

/** The conversation with one suggestion replaced (as the server reads it after an apply). */
export function withSuggestion(messages: AssistantMessage[],
                               suggestion: Suggestion): AssistantMessage[] {
  return messages.map((m) => m.suggestions.some((s) => s.id === suggestion.id)
    ? { ...m, suggestions: m.suggestions.map((s) => (s.id === suggestion.id ? suggestion : s)) }
    : m)
}

/** Whether a suggestion of the conversation is still changing on the server (applied, its job
 *  running, or done with its effect not measured yet): reads then stay full, not forward only,
 *  since a forward read brings new messages but not the new state of older ones. */
export function unsettled(messages: AssistantMessage[]): boolean {
  return messages.some((m) => m.suggestions.some((s) => inProgress(s) || awaitsMeasure(s)))
}

/** Done, with predicted figures whose measurement has not arrived yet. */
export function awaitsMeasure(s: Suggestion): boolean {
  return s.state === 'succeeded' && s.actual === null && s.expected.length > 0
}

// ------------------------------------------------------------------ suggestions

/** This browser's run of a suggestion: the job's progress as its event stream reports it. */
export interface SuggestionRun {
  phase: MeshJobPhase | 'measuring'
  fraction: number
  error: string | null
}

/** Why this user cannot apply suggestions here (null: they can). */
export interface ApplyAccess {
  refusal: string | null
}

export interface SuggestionControl {
  disabled: boolean
  /** The button's tooltip: why it is disabled, else what a click does. */
  title: string
}

const RUNNING = new Set(['queued', 'started', 'measuring'])

/** Whether a suggestion's button can be pressed, from the server's state of the suggestion and
 *  this browser's run of it: a run in progress (here, or a collaborator's the server reports)
 *  disables it; so does a refusal (a viewer, time travel), with its reason; a finished one may
 *  be applied again, as a new job. */
export function suggestionControl(s: Suggestion, run: SuggestionRun | undefined,
                                  access: ApplyAccess): SuggestionControl {
  const busy = run ? RUNNING.has(run.phase) : inProgress(s)
  if (busy) return { disabled: true, title: 'Its job is running.' }
  if (access.refusal) return { disabled: true, title: access.refusal }
  const again = s.state === 'succeeded' || run?.phase === 'succeeded'
  return { disabled: false,
           title: `Run ${s.operation} as ${again ? 'a new' : 'a'} job (undo takes it back)` }
}

/** The run after one phase of the job's stream; it never goes back from an end. */
export function advanceRun(run: SuggestionRun, phase: string,
                           error: string | null = null): SuggestionRun {
  if (run.phase === 'succeeded' || run.phase === 'failed' || run.phase === 'cancelled') {
    return run
  }
  const fractions: Record<string, number> = {
    queued: 0.15, started: 0.4, measuring: 0.9, succeeded: 1, failed: 1, cancelled: 1,
  }
  const fraction = fractions[phase]
  if (fraction === undefined || fraction < run.fraction) return run
  return { phase: phase as SuggestionRun['phase'], fraction, error: error ?? run.error }
}

// ------------------------------------------------------------------ figures

/** A number as people read it: whole above 100, one decimal above 10, else two. */
export function formatNumber(value: number): string {
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2
  return value.toLocaleString('en', { maximumFractionDigits: digits })
}

function withUnit(text: string, unit: string | null): string {
  return unit ? `${text} ${unit}` : text
}

/** A fact's value with its unit: "1,400 mm³", "no", "—" for unknown. */
export function formatFact(fact: Fact): string {
  const { value, unit } = fact
  if (value === null) return '—'
  if (typeof value === 'boolean') return value ? 'yes' : 'no'
  if (typeof value === 'number') return withUnit(formatNumber(value), unit)
  return withUnit(value, unit)
}

function figure(value: number | null): string {
  return value === null ? '?' : formatNumber(value)
}

/** An effect as "45 → 70 points". */
export function formatChange(effect: Effect): string {
  return withUnit(`${figure(effect.before)} → ${figure(effect.after)}`, effect.unit)
}

/** A figure a suggestion changes: its prediction beside its measurement (either may be
 *  missing: not measured yet, or measured without having been predicted). */
export interface EffectRow {
  name: string
  expected: Effect | null
  actual: Effect | null
}

/** Each predicted effect beside the measured one of the same name, then any figure measured
 *  that was not predicted. */
export function predictedBesideActual(s: Suggestion): EffectRow[] {
  const measured = new Map((s.actual ?? []).map((e) => [e.name, e]))
  const rows: EffectRow[] = s.expected.map((e) => (
    { name: e.name, expected: e, actual: measured.get(e.name) ?? null }))
  for (const a of s.actual ?? []) {
    if (!s.expected.some((e) => e.name === a.name)) rows.push({ name: a.name, expected: null, actual: a })
  }
  return rows
}
