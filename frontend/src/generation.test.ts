import { describe, expect, it } from 'vitest'
import {
  IDLE, advance, describeProgress, isFinished, isJobEvent, unavailableLabel, type JobEvent,
} from './generation'

const e = (event: JobEvent['event'], extra: Partial<JobEvent> = {}): JobEvent =>
  ({ event, job_id: 'j', ...extra })

describe('generation progress', () => {
  it('moves through the stages', () => {
    let p = IDLE
    const seen: number[] = []
    for (const ev of [e('queued', { position: 2 }), e('started', { device: 'cpu' }),
      e('preview', { faces: 100 }), e('medium'), e('final', { faces: 5000 })]) {
      p = advance(p, ev)
      seen.push(p.fraction)
    }
    expect(seen).toEqual([0.1, 0.25, 0.5, 0.75, 1])
    expect(p.stagesDone).toEqual(['preview', 'medium', 'final'])
    expect(p.jobId).toBe('j')
    expect(isFinished(p)).toBe(true)
    expect(describeProgress(p)).toBe('Done: 5,000 faces.')
  })

  it('accepts a cached job that starts at final', () => {
    const p = advance(IDLE, e('final', { cached: true }))
    expect(p.fraction).toBe(1)
    expect(describeProgress(p)).toContain('from cache')
  })

  it('never goes backwards', () => {
    const p = advance(advance(IDLE, e('medium')), e('started'))
    expect(p.phase).toBe('medium')
    expect(p.fraction).toBe(0.75)
  })

  it('reports failure and cancellation', () => {
    expect(advance(IDLE, e('failed', { reason: 'bad image' })).error).toBe('bad image')
    expect(isFinished(advance(IDLE, e('cancelled')))).toBe(true)
  })

  it('recognises stream events', () => {
    expect(isJobEvent({ event: 'preview', job_id: 'x' })).toBe(true)
    expect(isJobEvent({ event: 'nonsense', job_id: 'x' })).toBe(false)
    expect(isJobEvent({ event: 'final' })).toBe(false)
  })
})

describe('the generator menu', () => {
  it('says "no worker" only when no worker has reported the generator lately', () => {
    expect(unavailableLabel({ name: 'inflate', available: true, reason: '' })).toBe('')
    expect(unavailableLabel({
      name: 'inflate', available: false, reason: 'no GPU worker has reported it for 95 s',
    })).toBe(' (no worker)')
    expect(unavailableLabel({
      name: 'inflate', available: false, reason: 'no GPU worker has reported this generator',
    })).toBe(' (no worker)')
    expect(unavailableLabel({
      name: 'shap-e', available: false, reason: 'weights not found in /models/shap-e',
    })).toBe(' (unavailable)')
  })
})
