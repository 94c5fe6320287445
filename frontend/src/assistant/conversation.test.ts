import { describe, expect, it } from 'vitest'
import { readNdjson } from '../ndjson'
import {
  advanceRun, endDraft, foldLine, formatChange, formatFact, mergeMessages, predictedBesideActual,
  startDraft, suggestionControl, unsettled, withSuggestion, type AssistantMessage, type Suggestion,
  type SuggestionRun,
} from './conversation'

function suggestion(over: Partial<Suggestion> = {}): Suggestion {
  return {
    id: 's1', title: 'Repair the mesh', operation: 'repair', params: {},
    reason: 'the mesh is open', state: 'proposed', job_id: null, actual: null,
    expected: [{ name: 'printability score', unit: 'points', before: 58.2, after: 83.2 }],
    ...over,
  }
}

function message(id: string, position: number, over: Partial<AssistantMessage> = {}): AssistantMessage {
  return {
    id, project_id: 'p', asset_id: 'a', position, asked_by: 'u', asked_by_name: 'alice',
    at: '2026-12-07T04:10:00+00:00', question: 'will this print?', intent: 'will_it_print',
    answer: `answer ${id}`, facts: [], suggestions: [], similar: [], phrased_by: 'rules', ...over,
  }
}

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder()
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(encoder.encode(c))
      controller.close()
    },
  })
}

/** The draft after each line of a stream cut into the given chunks, as the panel folds it. */
async function drafts(...chunks: string[]): Promise<string[]> {
  let draft = startDraft('will this print?')
  const texts: string[] = []
  for await (const line of readNdjson(streamOf(...chunks))) {
    draft = foldLine(draft, line)
    texts.push(draft.text)
  }
  return texts
}

describe('the streamed answer', () => {
  it('grows token by token, whatever the chunks, then takes the stored message', async () => {
    const stored = message('m1', 7, { answer: 'Not as it is: the score is 58/100.' })
    const lines = [
      JSON.stringify({ type: 'token', text: 'Not as it is: ' }),
      JSON.stringify({ type: 'token', text: 'the score is 58/100.' }),
      JSON.stringify({ type: 'answer', message: stored }),
    ].join('\n') + '\n'
    const cut = [lines.slice(0, 9), lines.slice(9, 40), lines.slice(40, 41), lines.slice(41)]
    expect(await drafts(...cut)).toEqual([
      'Not as it is: ', 'Not as it is: the score is 58/100.', 'Not as it is: the score is 58/100.',
    ])
    let draft = startDraft('q')
    for (const line of lines.trim().split('\n')) draft = foldLine(draft, JSON.parse(line))
    expect(draft.message).toEqual(stored)
    expect(endDraft(draft)).toBe(draft)
  })

  it("uses the stored answer's text over the tokens", () => {
    const draft = foldLine(foldLine(startDraft('q'), { type: 'token', text: 'partial' }),
      { type: 'answer', message: message('m1', 1, { answer: 'whole' }) })
    expect(draft.text).toBe('whole')
  })

  it('ends with the reason of an error line, and ignores what follows', () => {
    let draft = foldLine(startDraft('q'), { type: 'token', text: 'Not ' })
    draft = foldLine(draft, { type: 'error', problem: { title: 'Too Many Requests',
                                                         detail: 'quota of 20 questions a day used' } })
    expect(draft.error).toBe('quota of 20 questions a day used')
    const after = foldLine(draft, { type: 'answer', message: message('m1', 1) })
    expect(after).toBe(draft)
    expect(foldLine(startDraft('q'), { type: 'error', problem: { title: 'Bad' } }).error).toBe('Bad')
    expect(foldLine(startDraft('q'), { type: 'error' }).error).toBe('The assistant stopped answering.')
  })

  it('ignores lines it does not know and says when the stream was cut short', () => {
    let draft = startDraft('q')
    for (const line of [null, 3, [], { type: 'thinking' }, { type: 'token', text: 5 },
                        { type: 'answer', message: 'no' }]) {
      draft = foldLine(draft, line)
    }
    expect(draft).toEqual(startDraft('q'))
    expect(endDraft(draft).error).toMatch(/ended before the answer/)
  })
})

describe('the conversation', () => {
  it('keeps log order and takes the server’s copy of a message it already has', () => {
    const old = [message('a', 1), message('c', 9)]
    const merged = mergeMessages(old, [message('b', 5), message('c', 9, { answer: 'newer' })])
    expect(merged.map((m) => m.id)).toEqual(['a', 'b', 'c'])
    expect(merged[2].answer).toBe('newer')
    expect(mergeMessages(old, [])).toBe(old)
  })

  it('puts an updated suggestion into its message only', () => {
    const mine = message('a', 1, { suggestions: [suggestion(), suggestion({ id: 's2' })] })
    const other = message('b', 2)
    const applied = suggestion({ state: 'succeeded', actual: [] })
    const [a, b] = withSuggestion([mine, other], applied)
    expect(a.suggestions).toEqual([applied, suggestion({ id: 's2' })])
    expect(b).toBe(other)
  })
})

describe('reading the conversation again', () => {
  it('stays needed while a suggestion is applied, running or not yet measured', () => {
    const asked = (s: Partial<Suggestion>) => [message('a', 1), message('b', 2, {
      suggestions: [suggestion(), suggestion({ id: 's2', ...s })] })]
    expect(unsettled(asked({}))).toBe(false)
    expect(unsettled(asked({ state: 'applied' }))).toBe(true)
    expect(unsettled(asked({ state: 'running' }))).toBe(true)
    expect(unsettled(asked({ state: 'requested' }))).toBe(true)
    expect(unsettled(asked({ state: 'started' }))).toBe(true)
    expect(unsettled(asked({ state: 'cancelled' }))).toBe(false)
    expect(unsettled(asked({ state: 'succeeded' }))).toBe(true)
    expect(unsettled(asked({ state: 'succeeded', actual: [] }))).toBe(false)
    expect(unsettled(asked({ state: 'failed' }))).toBe(false)
    // nothing predicted (an analysis): nothing to measure
    expect(unsettled(asked({ state: 'succeeded', expected: [] }))).toBe(false)
    expect(unsettled([])).toBe(false)
  })
})

describe('a suggestion', () => {
  const free = { refusal: null }

  it('can be applied, then not while its job runs, then again', () => {
    expect(suggestionControl(suggestion(), undefined, free).disabled).toBe(false)
    const queued: SuggestionRun = { phase: 'queued', fraction: 0.05, error: null }
    const measuring = advanceRun(advanceRun(queued, 'started'), 'measuring')
    expect(measuring.phase).toBe('measuring')
    expect(suggestionControl(suggestion(), measuring, free)).toEqual(
      { disabled: true, title: 'Its job is running.' })
    const done = advanceRun(measuring, 'succeeded')
    const control = suggestionControl(suggestion({ state: 'succeeded' }), done, free)
    expect(control.disabled).toBe(false)
    expect(control.title).toMatch(/a new job/)
  })

  it('is disabled with its reason for a viewer, and while a collaborator’s job runs', () => {
    const viewer = { refusal: 'Only editors apply suggestions; viewers can ask.' }
    expect(suggestionControl(suggestion(), undefined, viewer)).toEqual(
      { disabled: true, title: viewer.refusal })
    expect(suggestionControl(suggestion({ state: 'running' }), undefined, free).disabled).toBe(true)
    expect(suggestionControl(suggestion({ state: 'applied' }), undefined, free).disabled).toBe(true)
    expect(suggestionControl(suggestion({ state: 'started' }), undefined, free).disabled).toBe(true)
    expect(suggestionControl(suggestion({ state: 'cancelled' }), undefined, free).disabled)
      .toBe(false)
  })

  it('never runs backwards or past its end', () => {
    const started: SuggestionRun = { phase: 'started', fraction: 0.4, error: null }
    expect(advanceRun(started, 'queued')).toBe(started)
    expect(advanceRun(started, 'progress')).toBe(started)
    const failed = advanceRun(started, 'failed', 'the mesh is empty')
    expect(failed).toEqual({ phase: 'failed', fraction: 1, error: 'the mesh is empty' })
    expect(advanceRun(failed, 'succeeded')).toBe(failed)
  })

  it('shows each prediction beside its measurement, and a measurement not predicted', () => {
    const s = suggestion({
      expected: [{ name: 'printability score', unit: 'points', before: 58.2, after: 83.2 },
                 { name: 'support volume', unit: 'mm³', before: 1400, after: 200 }],
      actual: [{ name: 'printability score', unit: 'points', before: 58.2, after: 82.1 },
               { name: 'print time', unit: 'min', before: 95, after: 97 }],
    })
    const rows = predictedBesideActual(s)
    expect(rows.map((r) => [r.name, r.expected && formatChange(r.expected),
                            r.actual && formatChange(r.actual)])).toEqual([
      ['printability score', '58.2 → 83.2 points', '58.2 → 82.1 points'],
      ['support volume', '1,400 → 200 mm³', null],
      ['print time', null, '95 → 97 min'],
    ])
  })
})

describe('figures', () => {
  it('carry their units, booleans read yes or no, unknown is a dash', () => {
    const f = (value: number | string | boolean | null, unit: string | null = null) =>
      formatFact({ name: 'x', value, unit, source: 'analysis' })
    expect(f(1400, 'mm³')).toBe('1,400 mm³')
    expect(f(0.4567, 'mm')).toBe('0.46 mm')
    expect(f(12.345, 'g')).toBe('12.3 g')
    expect(f(false)).toBe('no')
    expect(f(true)).toBe('yes')
    expect(f(null, 'mm')).toBe('—')
    expect(f('PLA')).toBe('PLA')
    expect(formatChange({ name: 's', unit: null, before: null, after: 3 })).toBe('? → 3')
  })
})
