import { describe, expect, it } from 'vitest'
import { MADE_MESH_TRIES, firstLoad, waitForAnalysis } from './analysisWait'

type Answer = { stats?: { faces: number } }

/** A server that answers with each of `answers` in turn: an object, or 404 (thrown). */
function server(answers: (Answer | 404)[]): { fetch: () => Promise<Answer>; asked: () => number } {
  let asked = 0
  return {
    fetch: async () => {
      const answer = answers[Math.min(asked++, answers.length - 1)]
      if (answer === 404) throw new Error('404: not analysed')
      return answer
    },
    asked: () => asked,
  }
}
const noSleep = async (): Promise<void> => {}
const pending: Answer = {} // 202: the analysis job has not finished
const done: Answer = { stats: { faces: 12 } }

describe('the mesh panel waits for the analysis of a mesh an operation made', () => {
  it('gets the figures once the queued analysis lands, however late', async () => {
    const s = server([404, 404, ...Array(30).fill(pending), done])
    const got = await waitForAnalysis(s.fetch, firstLoad(true), () => true, noSleep)
    expect(got).toEqual(done)
    expect(s.asked()).toBe(33)
  })

  it('gives up after two minutes of asking', async () => {
    const s = server([pending])
    expect(await waitForAnalysis(s.fetch, firstLoad(true), () => true, noSleep)).toBeUndefined()
    expect(s.asked()).toBe(MADE_MESH_TRIES)
  })

  it('stops asking once the panel shows another mesh', async () => {
    const s = server([pending])
    let showing = true
    const sleep = async (): Promise<void> => { showing = s.asked() < 3 }
    expect(await waitForAnalysis(s.fetch, firstLoad(true), () => showing, sleep)).toBeUndefined()
    expect(s.asked()).toBe(3)
  })
})

describe('any other mesh', () => {
  it('is asked once: no analysis means the Analyse button, a pending one is not waited for', async () => {
    const none = server([404, done])
    expect(await waitForAnalysis(none.fetch, firstLoad(false), () => true, noSleep)).toBeNull()
    expect(none.asked()).toBe(1)
    const queued = server([pending, done])
    expect(await waitForAnalysis(queued.fetch, firstLoad(false), () => true, noSleep))
      .toBeUndefined()
    expect(queued.asked()).toBe(1)
  })

  it('an analysis someone asked for is waited for, and shown', async () => {
    const s = server([pending, pending, done])
    expect(await waitForAnalysis(s.fetch, { tries: 40, expected: false }, () => true, noSleep))
      .toEqual(done)
  })
})
