import { useState, type FormEvent } from 'react'
import type { Period } from './analyticsApi'

interface Props {
  period: Period
  onChange: (period: Period) => void
  /** Per-user figures are by day only. */
  withBucket?: boolean
}

/** From, to (UTC days, inclusive) and the series' bucket; applied together, so that one
 * period is asked for once. The server says why a period is refused (over 31 days by hour). */
export function PeriodPicker({ period, onChange, withBucket = true }: Props) {
  const [draft, setDraft] = useState(period)
  function apply(event: FormEvent): void {
    event.preventDefault()
    onChange(draft)
  }
  return (
    <form className="inline-form period-picker" aria-label="Period" onSubmit={apply}>
      <label>From
        <input type="date" value={draft.from} required
          onChange={(e) => setDraft({ ...draft, from: e.target.value })} />
      </label>
      <label>To
        <input type="date" value={draft.to} required
          onChange={(e) => setDraft({ ...draft, to: e.target.value })} />
      </label>
      {withBucket && (
        <label>By
          <select value={draft.bucket}
            onChange={(e) => setDraft({ ...draft, bucket: e.target.value as Period['bucket'] })}>
            <option value="day">day</option>
            <option value="hour">hour</option>
          </select>
        </label>
      )}
      <button type="submit" className="primary">Show</button>
    </form>
  )
}
