/** The assistant's routes (`/api/v1/projects/{id}/assistant/...`): ask, read, apply. */
import { problemOf, request } from '../api'
import type { Queued } from '../meshJobs'
import type { AssistantMessage, Suggestion } from './conversation'

const a = (projectId: string): string =>
  `/api/v1/projects/${encodeURIComponent(projectId)}/assistant`

export interface ConversationPage {
  messages: AssistantMessage[]
  next_after: number
}

export const assistantApi = {
  /** The conversation after a log position, oldest first (any member may read it). */
  messages: (projectId: string, after: number, limit = 200) =>
    request<ConversationPage>('GET', `${a(projectId)}/messages?after=${after}&limit=${limit}`),
  /** Run a suggestion as a mesh job (editors only); the suggestion names the scene object
   *  that shows its mesh, so the result replaces it there for everyone. */
  apply: (projectId: string, suggestionId: string) =>
    request<Queued>('POST',
      `${a(projectId)}/suggestions/${encodeURIComponent(suggestionId)}/apply`),
  suggestion: (projectId: string, suggestionId: string) =>
    request<Suggestion>('GET', `${a(projectId)}/suggestions/${encodeURIComponent(suggestionId)}`),
}

/** Ask a question; the answer comes back as an NDJSON stream (refusals before it starts are
 *  thrown as the problem they are: empty, too long, another project's asset, quota). */
export async function askStreaming(projectId: string, text: string, assetId: string | null,
                                   signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
  const response = await fetch(`${a(projectId)}/messages`, {
    method: 'POST', credentials: 'same-origin', signal,
    headers: { 'Content-Type': 'application/json', Accept: 'application/x-ndjson' },
    body: JSON.stringify({ text, asset_id: assetId }),
  })
  if (!response.ok) throw await problemOf(response)
  if (!response.body) throw new Error('The server sent no answer stream.')
  return response.body
}
