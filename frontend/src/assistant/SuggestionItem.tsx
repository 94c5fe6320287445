import {
  formatChange, predictedBesideActual, suggestionControl, type ApplyAccess, type Suggestion,
  type SuggestionRun,
} from './conversation'

interface Props {
  suggestion: Suggestion
  run: SuggestionRun | undefined
  access: ApplyAccess
  onApply: (suggestion: Suggestion) => void
}

const PHASE_TEXT: Record<SuggestionRun['phase'], string> = {
  idle: 'not started', queued: 'queued', started: 'running', measuring: 'measuring the result',
  succeeded: 'done', failed: 'failed', cancelled: 'cancelled',
}

/** A suggestion as a button, with its predicted effect and, once its job is done, the real one. */
export function SuggestionItem({ suggestion: s, run, access, onApply }: Props) {
  const control = suggestionControl(s, run, access)
  const rows = predictedBesideActual(s)
  return (
    <li className="suggestion" data-testid="assistant-suggestion" data-state={s.state}>
      <div className="suggestion-head">
        <button type="button" className="small" disabled={control.disabled} title={control.title}
          onClick={() => onApply(s)}>
          {s.title}
        </button>
        <span className="muted small-text">{s.reason}</span>
      </div>
      {rows.length > 0 && (
        <ul className="effects" data-testid="suggestion-effects">
          {rows.map((r) => (
            <li key={r.name}>
              <span className="effect-name">{r.name}</span>
              <span className="muted"> predicted </span>
              <span data-testid="effect-expected">{r.expected ? formatChange(r.expected) : '—'}</span>
              {(r.actual || run || s.state !== 'proposed') && <>
                <span className="muted"> · actual </span>
                <span className="effect-actual" data-testid="effect-actual">
                  {r.actual ? formatChange(r.actual) : run?.phase === 'measuring' ? 'measuring…' : '—'}
                </span>
              </>}
            </li>
          ))}
        </ul>
      )}
      {run && (
        <div className="job" data-testid="suggestion-job" data-phase={run.phase}>
          <progress max={1} value={run.fraction} aria-label={`${s.title} progress`} />
          <p role="status" className="small-text">
            {s.operation}: {PHASE_TEXT[run.phase]}{run.error ? ` — ${run.error}` : ''}
          </p>
        </div>
      )}
    </li>
  )
}
