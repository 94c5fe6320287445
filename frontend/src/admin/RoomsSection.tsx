import type { Account } from '../api'
import { analytics } from './analyticsApi'
import { formatBytes, namedRooms } from './shape'
import { useLoaded } from './useLoaded'

const ms = (v: number | null): string => (v === null ? '—' : `${v.toFixed(1)} ms`)

/** The scene rooms open on this API node now, with how long their latest stores took: every
 * edit waits for its store before anyone sees it. */
export function RoomsSection({ users, refresh }: { users: Account[]; refresh: number }) {
  const loaded = useLoaded(() => analytics.rooms(), String(refresh))
  return (
    <section aria-labelledby="admin-rooms">
      <h2 id="admin-rooms">Live rooms</h2>
      {loaded.state === 'loading' && <p className="muted">Loading…</p>}
      {loaded.state === 'failed' && <p className="error-text" role="alert">{loaded.error}</p>}
      {loaded.state === 'ready' && (loaded.value.rooms.length === 0
        ? <p className="muted" data-testid="no-rooms">
          No room is open on node {loaded.value.node}.</p>
        : (
          <table className="users-table" data-testid="rooms-table">
            <thead>
              <tr><th>Project</th><th>Users</th><th>Peers</th><th>Version</th><th>Document</th>
                <th>Waiting</th><th>Store p50</th><th>p99</th><th>max</th></tr>
            </thead>
            <tbody>
              {namedRooms(loaded.value.rooms, users).map((r) => (
                <tr key={r.project_id} data-project={r.project_id}>
                  <td><a href={`/projects/${r.project_id}`}>{r.project_id.slice(0, 8)}</a></td>
                  <td>{r.names.join(', ')}</td>
                  <td>{r.peers}</td>
                  <td>{r.version}</td>
                  <td>{formatBytes(r.document_bytes)}</td>
                  <td>{r.pending} ({formatBytes(r.pending_bytes)})</td>
                  <td>{ms(r.store_p50_ms)}</td>
                  <td>{ms(r.store_p99_ms)}</td>
                  <td>{ms(r.store_max_ms)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
    </section>
  )
}
