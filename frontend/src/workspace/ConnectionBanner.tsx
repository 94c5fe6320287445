import type { CollabState } from '../collab'

interface Props {
  state: CollabState
}

/** Says at once when the scene connection is lost (y-websocket reconnects by itself and
 *  resends the edits made meanwhile), and while the first connection is being made. */
export function ConnectionBanner({ state }: Props) {
  if (state.status === 'refused') {
    return <div className="banner banner-error" role="alert">{state.refusal}</div>
  }
  if (state.offline) {
    return (
      <div className="banner banner-warn" role="status" data-testid="connection-banner"
        data-state="offline">
        Offline, your edits will be sent when the connection is back. Reconnecting…
        {state.pending ? ' (edits waiting)' : ''}
      </div>
    )
  }
  if (state.status === 'connected' && state.synced) return null
  return <div className="banner" role="status" data-testid="connection-banner">Connecting to the scene…</div>
}
