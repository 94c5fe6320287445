/**
 * The scene WebSocket's protocol constants, mirroring core/collab/protocol.py: y-websocket
 * message types plus the studio's NOTICE extension, and the close codes the server uses.
 */

export const PROTOCOL_VERSION = 1

export const MessageType = {
  SYNC: 0,
  AWARENESS: 1,
  AUTH: 2,
  QUERY_AWARENESS: 3,
  /** Studio extension: a JSON body telling the client why something was refused. */
  NOTICE: 100,
} as const

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  INTERNAL_ERROR: 1011,
  BAD_MESSAGE: 4400,
  UNAUTHENTICATED: 4401,
  FORBIDDEN: 4403,
  NOT_FOUND: 4404,
  TOO_LARGE: 4413,
  STORAGE_FAILED: 4500,
} as const

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode]

/** Whether the client should try again after the server closed with `code`. */
export function isRetryable(code: number): boolean {
  return !(code >= 4400 && code < 4500)
}

/** A sentence for the user about why the scene connection closed. */
export function describeClose(code: number, reason = ''): string {
  const why = reason ? ` (${reason})` : ''
  switch (code) {
    case CloseCode.UNAUTHENTICATED:
      return `Your session has ended; sign in again${why}.`
    case CloseCode.FORBIDDEN:
      return `You are not a member of this project${why}.`
    case CloseCode.NOT_FOUND:
      return `This project does not exist${why}.`
    case CloseCode.BAD_MESSAGE:
      return `The server refused a malformed message or an edit the scene cannot hold${why}.`
    case CloseCode.TOO_LARGE:
      return `An edit was too large to send${why}.`
    case CloseCode.STORAGE_FAILED:
      return `The server could not store an edit; it is sent again on reconnect${why}.`
    case CloseCode.GOING_AWAY:
      return 'The server is restarting; reconnecting.'
    default:
      return `Connection closed (code ${code})${why}.`
  }
}

/** The JSON body of a NOTICE message. */
export interface Notice {
  type: string
  detail: string
  [extra: string]: unknown
}

export function parseNotice(body: Uint8Array): Notice | null {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(body))
    if (value && typeof value === 'object' && 'detail' in value && 'type' in value) {
      const notice = value as Record<string, unknown>
      return { ...notice, type: String(notice.type), detail: String(notice.detail) }
    }
  } catch {
    // not JSON: ignored, like any message a client does not understand
  }
  return null
}
