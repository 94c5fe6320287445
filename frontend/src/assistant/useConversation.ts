/** The project's conversation with the assistant: read (and kept current while shown), asked. */
import { useCallback, useEffect, useRef, useState } from 'react'
import { errorMessage } from '../api'
import { readNdjson } from '../ndjson'
import { askStreaming, assistantApi } from './assistantApi'
import {
  endDraft, foldLine, mergeMessages, startDraft, unsettled, withSuggestion, type AssistantMessage,
  type Draft, type Suggestion,
} from './conversation'

/** Collaborators' questions are events with no push channel to the browser; while the panel is
 *  shown it reads the conversation this often (one indexed query, forward from a cursor unless a
 *  full read is due; a full read covers the first page of 200 messages). */
const POLL_MS = 2000

export interface Conversation {
  messages: AssistantMessage[]
  /** The answer being streamed (null when none is). */
  draft: Draft | null
  error: string | null
  dismiss: () => void
  /** Resolves true once the answer is stored, false when it was refused or cut off. */
  ask: (text: string, assetId: string | null) => Promise<boolean>
  /** Put a suggestion as the server now reads it into its message. */
  update: (suggestion: Suggestion) => void
}

/** `changes` counts the scene's changes: an applied suggestion's job changes the scene when its
 *  result replaces an object's mesh, so the next read is a full one, which brings the current
 *  states of older suggestions (a collaborator's apply); reads stay full until every suggestion
 *  has settled (its measured effect arrives after the job). */
export function useConversation(projectId: string, active: boolean,
                                changes: number): Conversation {
  const [messages, setMessages] = useState<AssistantMessage[]>([])
  const [draft, setDraft] = useState<Draft | null>(null)
  const [error, setError] = useState<string | null>(null)
  // A failed read of the log is its own error: the next read that works clears it, not an ask.
  const [readError, setReadError] = useState<string | null>(null)
  const cursor = useRef(0)
  const full = useRef(true)
  const latest = useRef<AssistantMessage[]>([])
  latest.current = messages
  const abort = useRef<AbortController | null>(null)

  useEffect(() => () => abort.current?.abort(), [])

  const read = useCallback(async (from: number) => {
    const page = await assistantApi.messages(projectId, from)
    cursor.current = Math.max(cursor.current, page.next_after)
    setMessages((known) => mergeMessages(known, page.messages))
  }, [projectId])

  useEffect(() => { full.current = true }, [changes])

  // Shown: read everything once (suggestions' states are current in a full read), then forward.
  useEffect(() => {
    if (!active) return
    let live = true
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = async (): Promise<void> => {
      const from = full.current || unsettled(latest.current) ? 0 : cursor.current
      full.current = false
      try {
        await read(from)
        if (live) setReadError(null)
      } catch (e) {
        if (live) setReadError(errorMessage(e))
      }
      if (live) timer = setTimeout(() => void tick(), POLL_MS)
    }
    full.current = true
    void tick()
    return () => {
      live = false
      clearTimeout(timer)
    }
  }, [active, read])

  const ask = useCallback(async (text: string, assetId: string | null): Promise<boolean> => {
    abort.current?.abort()
    const controller = new AbortController()
    abort.current = controller
    let current = startDraft(text)
    setDraft(current)
    try {
      const stream = await askStreaming(projectId, text, assetId, controller.signal)
      for await (const line of readNdjson(stream)) {
        current = foldLine(current, line)
        setDraft(current)
      }
      current = endDraft(current)
      const answered = current.message
      if (answered) {
        setMessages((known) => mergeMessages(known, [answered]))
        setError(null) // an earlier refusal no longer holds
        return true
      }
      setError(current.error)
      return false
    } catch (e) {
      if (!controller.signal.aborted) setError(errorMessage(e))
      return false
    } finally {
      if (abort.current === controller) {
        abort.current = null
        setDraft(null)
      }
    }
  }, [projectId])

  const update = useCallback((suggestion: Suggestion) => {
    setMessages((known) => withSuggestion(known, suggestion))
  }, [])
  const dismiss = useCallback(() => {
    setError(null)
    setReadError(null)
  }, [])

  return { messages, draft, error: error ?? readError, dismiss, ask, update }
}
