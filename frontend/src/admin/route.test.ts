import { describe, expect, it } from 'vitest'
import { parseRoute } from '../router'

describe('the dashboards routes', () => {
  it('opens the dashboard at /admin and keeps the users page at /admin/users', () => {
    expect(parseRoute('/admin')).toEqual({ page: 'admin' })
    expect(parseRoute('/admin/')).toEqual({ page: 'admin' })
    expect(parseRoute('/admin/users')).toEqual({ page: 'admin-users' })
    expect(parseRoute('/me/activity')).toEqual({ page: 'my-activity' })
  })

  it('sends unknown admin paths to the projects, not to the dashboard', () => {
    expect(parseRoute('/admin/nothing')).toEqual({ page: 'projects' })
    expect(parseRoute('/administrator')).toEqual({ page: 'projects' })
  })
})
