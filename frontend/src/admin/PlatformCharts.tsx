import type { Platform } from './analyticsApi'
import { TimeChart } from './TimeChart'
import { errorSeries, seriesData, successRates } from './shape'

/** The period bucket by bucket: who was active, the jobs and how many succeeded, the errors
 * and the GPU's seconds. */
export function PlatformCharts({ platform }: { platform: Platform }) {
  const { series, bucket } = platform
  const errors = errorSeries(series, platform.route_errors)
  return (
    <div className="admin-grid">
      <TimeChart title="Active users and sign-ins" bucket={bucket} testId="chart-activity"
        lines={[{ label: 'Active users' }, { label: 'Sign-ins' }, { label: 'Failed sign-ins' },
          { label: 'Projects created' }, { label: 'Exports' }]}
        data={seriesData(series, ['active_users', 'sign_ins', 'failed_sign_ins',
          'projects_created', 'exports'])} />
      <TimeChart title="Generations" bucket={bucket} testId="chart-generations"
        lines={[{ label: 'Requested' }, { label: 'Succeeded' }, { label: 'Failed' },
          { label: 'Success', scale: 'rate' }]}
        data={seriesData(series, ['generations', 'generations_succeeded', 'generations_failed'],
          successRates(series, 'generations_succeeded', 'generations_failed'))} />
      <TimeChart title="Mesh jobs" bucket={bucket} testId="chart-mesh-jobs"
        lines={[{ label: 'Run' }, { label: 'Succeeded' }, { label: 'Failed' },
          { label: 'Success', scale: 'rate' }]}
        data={seriesData(series, ['mesh_jobs', 'mesh_jobs_succeeded', 'mesh_jobs_failed'],
          successRates(series, 'mesh_jobs_succeeded', 'mesh_jobs_failed'))} />
      <TimeChart title={platform.route_errors?.length ? 'Errors by route (4xx and 5xx)'
        : 'Errors (4xx and 5xx)'} bucket={bucket} testId="chart-errors"
        lines={errors.labels.map((label) => ({ label }))} data={errors.data} />
      <TimeChart title="Requests" bucket={bucket} testId="chart-requests"
        lines={[{ label: 'Requests' }]} data={seriesData(series, ['requests'])} />
      <TimeChart title="GPU use" bucket={bucket} unit=" s" testId="chart-gpu"
        lines={[{ label: 'GPU seconds' }]} data={seriesData(series, ['gpu_s'])} />
      <TimeChart title="Generations answered without the GPU" bucket={bucket}
        testId="chart-dedup" lines={[{ label: 'Cache hits' }, { label: 'Joins' }]}
        data={seriesData(series, ['cache_hits', 'single_flight_joins'])} />
    </div>
  )
}
