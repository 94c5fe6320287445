import type { UserAnalytics } from './analyticsApi'
import { BarChart } from './BarChart'
import { Figures } from './Figures'
import { TimeChart } from './TimeChart'
import { formatDuration, formatRate, userDays, usesBars } from './shape'

/** One person's figures over a period: what they made, how it went, what they prefer. Shown to
 * admins for anyone and to each user for themself. */
export function UserAnalyticsView({ figures: u }: { figures: UserAnalytics }) {
  const fav = u.favourite
  return (
    <div className="user-analytics" data-testid="user-analytics" data-user={u.username}>
      <Figures label={`Figures of ${u.username}`} figures={[
        { id: 'user-projects-created', label: 'Projects created', value: u.projects_created },
        { id: 'user-generations', label: 'Generations', value: u.generations },
        { id: 'user-generations-failed', label: 'Failed', value: u.generations_failed },
        { id: 'user-success', label: 'Success rate', value: formatRate(u.success_rate) },
        { id: 'user-average-generation', label: 'Average generation',
          value: formatDuration(u.average_generation_s) },
        { id: 'user-exports', label: 'Exports', value: u.exports },
        { id: 'user-shared', label: 'Projects shared', value: u.shared_projects },
        { id: 'user-active', label: 'Active time', value: formatDuration(u.active_s),
          hint: `${u.sessions} sessions in project rooms` },
        { id: 'user-sign-ins', label: 'Sign-ins', value: u.sign_ins },
      ]} />
      <p className="muted" data-testid="user-favourites">
        Favourites: generator {fav.generator ?? '—'}, face budget {fav.face_budget ?? '—'},
        style {fav.style ?? '—'}
      </p>
      <TimeChart title="Day by day" bucket="day" testId="chart-user-days"
        lines={[{ label: 'Generations' }, { label: 'Failed' }, { label: 'Exports' },
          { label: 'Projects created' }]}
        data={userDays(u)} />
      <div className="admin-grid">
        <BarChart title="Generators" bars={usesBars(u.generators)} series={['Uses']} />
        <BarChart title="Styles" bars={usesBars(u.styles)} series={['Uses']} />
        <BarChart title="Materials" bars={usesBars(u.materials)} series={['Uses']} />
        <BarChart title="Exports by format" bars={usesBars(u.exports_by_format)}
          series={['Exports']} />
        <BarChart title="Face budgets" bars={usesBars(u.face_budgets)} series={['Uses']} />
      </div>
    </div>
  )
}
