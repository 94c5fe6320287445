import { formatFact, formatNumber, type ApplyAccess, type AssistantMessage, type Suggestion,
  type SuggestionRun } from './conversation'
import { SuggestionItem } from './SuggestionItem'

interface Props {
  message: AssistantMessage
  runs: Record<string, SuggestionRun>
  access: ApplyAccess
  onApply: (suggestion: Suggestion) => void
}

function when(at: string): string {
  const d = new Date(at)
  return Number.isNaN(d.getTime()) ? at : d.toLocaleTimeString()
}

/** One question and its answer: the text, the figures it used, similar designs, suggestions. */
export function AnswerCard({ message: m, runs, access, onApply }: Props) {
  return (
    <li className="assistant-message" data-testid="assistant-message" data-intent={m.intent}>
      <p className="assistant-question">
        <strong>{m.asked_by_name}</strong>: {m.question}
        <span className="muted small-text"> · {when(m.at)}</span>
      </p>
      <p className="assistant-answer" data-testid="assistant-answer">{m.answer}</p>
      {m.facts.length > 0 && (
        <dl className="stats assistant-facts" data-testid="assistant-facts">
          {m.facts.map((f, i) => (
            <div key={`${i}:${f.name}`} className="fact" title={`from the ${f.source}`}>
              <dt>{f.name}</dt><dd>{formatFact(f)}</dd>
            </div>
          ))}
        </dl>
      )}
      {m.similar.length > 0 && (
        <ul className="similar" data-testid="assistant-similar">
          {m.similar.map((d) => (
            <li key={d.asset_id}>
              {d.thumbnail_url && <img src={d.thumbnail_url} alt="" width={48} height={48} />}
              <span>{d.filename}</span>
              <span className="muted small-text"> in {d.project_name} · distance {formatNumber(d.distance)}</span>
            </li>
          ))}
        </ul>
      )}
      {m.suggestions.length > 0 && (
        <ul className="suggestions">
          {m.suggestions.map((s) => (
            <SuggestionItem key={s.id} suggestion={s} run={runs[s.id]} access={access}
              onApply={onApply} />
          ))}
        </ul>
      )}
      {m.suggestions.length > 0 && access.refusal && (
        <p className="muted small-text" data-testid="apply-refusal">{access.refusal}</p>
      )}
      {m.phrased_by !== 'rules' && (
        <p className="muted small-text">Phrased by {m.phrased_by}; the figures are the studio's.</p>
      )}
    </li>
  )
}
