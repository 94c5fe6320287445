import { useCallback, useEffect, useRef, useState } from 'react'
import { errorMessage } from '../api'
import { ErrorMessage } from '../components/ErrorMessage'
import { madeMesh, meshApi } from '../meshJobs'
import type { SceneObject } from '../scene'
import { AnswerCard } from './AnswerCard'
import type { Suggestion } from './conversation'
import { QuestionForm } from './QuestionForm'
import { useConversation } from './useConversation'
import { useSuggestionRuns } from './useSuggestionRuns'

interface Props {
  projectId: string
  /** The selected object: questions are about its mesh (none: about the project). */
  object: SceneObject | null
  /** Why this user cannot apply suggestions now (null: they can). */
  applyRefusal: string | null
  /** Whether the panel is on screen (it follows collaborators' questions only then). */
  active: boolean
  /** Bumped whenever the shared scene changes (a suggestion's result may have arrived). */
  changes: number
}

const EXAMPLES = ['will this print?', 'why is the score low?', 'make it lighter', 'what next?']

/** The mesh an object shows: a generation's final mesh, or the mesh asset it names. */
function useMeshIdOf(object: SceneObject | null): { meshId: string | null; error: string | null } {
  const [state, setState] = useState<{ meshId: string | null; error: string | null }>(
    { meshId: null, error: null })
  const jobId = object?.jobId ?? null
  const stage = object?.stage ?? null
  const asset = object?.asset ?? null
  useEffect(() => {
    let live = true
    if (jobId && stage) {
      meshApi.job(jobId)
        .then((job) => { if (live) setState({ meshId: madeMesh(job), error: null }) })
        .catch((e: unknown) => { if (live) setState({ meshId: null, error: errorMessage(e) }) })
    } else {
      setState({ meshId: asset, error: null })
    }
    return () => { live = false }
  }, [jobId, stage, asset])
  return state
}

/** Ask the assistant about the selected object or the project; apply what it suggests. */
export function AssistantPanel({ projectId, object, applyRefusal, active, changes }: Props) {
  const conversation = useConversation(projectId, active, changes)
  const { runs, apply } = useSuggestionRuns(projectId, conversation.update)
  const { meshId, error: meshError } = useMeshIdOf(object)
  const end = useRef<HTMLDivElement>(null)
  const subject = object && meshId ? object.name : 'the project'

  const count = conversation.messages.length
  const streamed = conversation.draft?.text.length ?? 0
  useEffect(() => { end.current?.scrollIntoView({ block: 'nearest' }) }, [count, streamed])

  const onApply = useCallback((s: Suggestion) => { void apply(s) }, [apply])

  return (
    <section className="assistant" aria-label="Assistant">
      <p className="muted small-text" data-testid="assistant-subject">
        Asking about {subject}.
      </p>
      {meshError && <p className="muted small-text">{meshError}</p>}
      <ol className="assistant-log" aria-live="polite">
        {count === 0 && !conversation.draft && (
          <li className="muted small-text">
            No questions yet. Try: {EXAMPLES.map((q) => `“${q}”`).join(', ')}.
          </li>
        )}
        {conversation.messages.map((m) => (
          <AnswerCard key={m.id} message={m} runs={runs} access={{ refusal: applyRefusal }}
            onApply={onApply} />
        ))}
        {conversation.draft && (
          <li className="assistant-message pending" data-testid="assistant-draft">
            <p className="assistant-question">{conversation.draft.question}</p>
            <p className="assistant-answer">{conversation.draft.text || 'Thinking…'}</p>
          </li>
        )}
      </ol>
      <div ref={end} />
      {conversation.error && (
        <ErrorMessage message={conversation.error} onDismiss={conversation.dismiss} />
      )}
      <QuestionForm subject={subject} busy={conversation.draft !== null}
        onAsk={(text) => conversation.ask(text, meshId)} />
    </section>
  )
}
