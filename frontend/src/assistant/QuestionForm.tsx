import { useState, type FormEvent, type KeyboardEvent } from 'react'

interface Props {
  subject: string
  busy: boolean
  /** Resolves true once answered: the box is emptied then (a refused question stays to fix). */
  onAsk: (text: string) => Promise<boolean>
}

/** The question box: Enter sends, Shift+Enter starts a new line. The server judges the text
 *  (empty, too long): its reason shows in the panel, so the limits live in one place. */
export function QuestionForm({ subject, busy, onAsk }: Props) {
  const [text, setText] = useState('')

  function send(): void {
    if (busy) return
    const asked = text
    void onAsk(asked).then((answered) => {
      if (answered) setText((now) => (now === asked ? '' : now))
    })
  }

  function submit(event: FormEvent): void {
    event.preventDefault()
    send()
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>): void {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault()
      send()
    }
  }

  return (
    <form className="assistant-form" onSubmit={submit}>
      <label className="grow">
        <span className="visually-hidden">Question for the assistant</span>
        <textarea rows={2} value={text} placeholder={`Ask about ${subject}… (Enter sends)`}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown} />
      </label>
      <button type="submit" disabled={busy}>Ask</button>
    </form>
  )
}
