import type { CollabState } from '../collab'

interface Props {
  state: CollabState
}

/** Shown while the scene connection is down; y-websocket reconnects and resends edits. */
export function ConnectionBanner({ state }: Props) {
  if (state.status === 'refused') {
    return <div className="banner banner-error" role="alert">{state.refusal}</div>
  }
  if (state.status === 'connected' && state.synced) return null
  if (state.status === 'connecting' && !state.pending && !state.synced) {
    return <div className="banner" role="status" data-testid="connection-banner">Connecting to the scene…</div>
  }
  return (
    <div className="banner banner-warn" role="status" data-testid="connection-banner">
      Connection lost — reconnecting.{' '}
      {state.pending ? 'Your edits are kept and will be sent when the connection is back.' : ''}
    </div>
  )
}
