import { useEffect, useState } from 'react'
import { errorMessage } from '../api'

export type Loaded<T> =
  | { state: 'loading' } | { state: 'failed'; error: string } | { state: 'ready'; value: T }

/** What `load` answers, loaded again whenever `key` changes; an answer that arrives after the
 * key moved on is dropped, so a slow old period never overwrites the new one. */
export function useLoaded<T>(load: () => Promise<T>, key: string): Loaded<T> {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: 'loading' })
  useEffect(() => {
    let current = true
    setLoaded({ state: 'loading' })
    load().then(
      (value) => { if (current) setLoaded({ state: 'ready', value }) },
      (e: unknown) => { if (current) setLoaded({ state: 'failed', error: errorMessage(e) }) },
    )
    return () => { current = false }
    // `load` is a new closure on every render: the key says when it asks something new
  }, [key])
  return loaded
}
