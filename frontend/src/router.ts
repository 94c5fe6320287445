/** A client-side router on the History API: `/`, `/projects/{id}`, `/admin` (the dashboard),
 * `/admin/users` and `/me/activity`. */
import { useEffect, useState } from 'react'

export type Route =
  | { page: 'projects' } | { page: 'workspace'; projectId: string } | { page: 'admin-users' }
  | { page: 'admin' } | { page: 'my-activity' }

export function parseRoute(pathname: string): Route {
  if (/^\/admin\/users\/?$/.test(pathname)) return { page: 'admin-users' }
  if (/^\/admin\/?$/.test(pathname)) return { page: 'admin' }
  if (/^\/me\/activity\/?$/.test(pathname)) return { page: 'my-activity' }
  const m = /^\/projects\/([^/]+)\/?$/.exec(pathname)
  return m ? { page: 'workspace', projectId: decodeURIComponent(m[1]) } : { page: 'projects' }
}

const CHANGE = 'orfeas:navigate'

export function navigate(path: string): void {
  if (path === window.location.pathname) return
  window.history.pushState(null, '', path)
  window.dispatchEvent(new Event(CHANGE))
}

export function useRoute(): Route {
  const [path, setPath] = useState(window.location.pathname)
  useEffect(() => {
    const update = (): void => setPath(window.location.pathname)
    window.addEventListener('popstate', update)
    window.addEventListener(CHANGE, update)
    return () => {
      window.removeEventListener('popstate', update)
      window.removeEventListener(CHANGE, update)
    }
  }, [])
  return parseRoute(path)
}
