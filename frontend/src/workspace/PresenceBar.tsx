import type { Peer } from '../collab'

interface Props {
  peers: Peer[]
  following: number | null
  onFollow: (clientId: number | null) => void
}

function initials(name: string): string {
  return name.split(/[\s._-]+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join('') || '?'
}

/** Who is in the project now (awareness; people drop out after its 30 s timeout). */
export function PresenceBar({ peers, following, onFollow }: Props) {
  return (
    <ul className="presence" aria-label="People here now">
      {peers.map((p) => (
        <li key={p.clientId} className="avatar" style={{ background: p.user.color }}
          title={p.self ? `${p.user.name} (you)` : p.user.name} data-user={p.user.name}>
          {p.self ? (
            <>
              <span aria-hidden="true">{initials(p.user.name)}</span>
              <span className="visually-hidden">{p.user.name} (you)</span>
            </>
          ) : (
            <button type="button" className="avatar-button" aria-pressed={following === p.clientId}
              disabled={!p.camera}
              title={following === p.clientId ? `Stop following ${p.user.name}`
                : `Follow ${p.user.name}'s view`}
              onClick={() => onFollow(following === p.clientId ? null : p.clientId)}>
              <span aria-hidden="true">{initials(p.user.name)}</span>
              <span className="visually-hidden">{p.user.name}</span>
            </button>
          )}
        </li>
      ))}
    </ul>
  )
}
