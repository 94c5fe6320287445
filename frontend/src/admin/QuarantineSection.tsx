import { analytics } from './analyticsApi'
import { useLoaded } from './useLoaded'

const SHOWN = 20

/** Events a read model failed on and set aside (`orfeas projections retry` applies them again
 * after a fix): the count per model and the newest ones with their error. */
export function QuarantineSection({ refresh }: { refresh: number }) {
  const loaded = useLoaded(() => analytics.quarantine(SHOWN), String(refresh))
  return (
    <section aria-labelledby="admin-quarantine">
      <h2 id="admin-quarantine">Quarantined events</h2>
      {loaded.state === 'loading' && <p className="muted">Loading…</p>}
      {loaded.state === 'failed' && <p className="error-text" role="alert">{loaded.error}</p>}
      {loaded.state === 'ready' && (
        <>
          <p data-testid="quarantine-total">
            {loaded.value.total === 0 ? 'None: every read model applied every event.'
              : `${loaded.value.total} events: ${Object.entries(loaded.value.by_model)
                .map(([model, n]) => `${model} ${n}`).join(', ')}.`}
          </p>
          {loaded.value.events.length > 0 && (
            <table className="users-table" data-testid="quarantine-table">
              <thead>
                <tr><th>Model</th><th>Position</th><th>Topic</th><th>Error</th><th>When</th>
                  <th>Attempts</th></tr>
              </thead>
              <tbody>
                {loaded.value.events.map((e) => (
                  <tr key={`${e.model}:${e.position}`}>
                    <td>{e.model}</td>
                    <td>{e.position}</td>
                    <td>{e.topic}</td>
                    <td className="quarantine-error">{e.error}</td>
                    <td>{new Date(e.quarantined_at).toLocaleString()}</td>
                    <td>{e.attempts}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  )
}
