import type { Peer } from '../collab'

interface Props {
  peers: Peer[]
}

function initials(name: string): string {
  return name.split(/[\s._-]+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join('') || '?'
}

/** Who is in the project now (awareness; people drop out after its 30 s timeout). */
export function PresenceBar({ peers }: Props) {
  return (
    <ul className="presence" aria-label="People here now">
      {peers.map((p) => (
        <li key={p.clientId} className="avatar" style={{ background: p.user.color }}
          title={p.self ? `${p.user.name} (you)` : p.user.name} data-user={p.user.name}>
          <span aria-hidden="true">{initials(p.user.name)}</span>
          <span className="visually-hidden">{p.user.name}{p.self ? ' (you)' : ''}</span>
        </li>
      ))}
    </ul>
  )
}
