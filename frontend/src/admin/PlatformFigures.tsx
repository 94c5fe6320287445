import type { Platform } from './analyticsApi'
import { Figures } from './Figures'
import { formatDuration, formatRate } from './shape'

/** The platform's headline numbers over the period. */
export function PlatformFigures({ platform }: { platform: Platform }) {
  const { totals: t, active_users: active, dedup } = platform
  return (
    <Figures label="Platform figures" figures={[
      { id: 'active-daily', label: 'Active users (day)', value: active.daily,
        hint: `distinct users on ${platform.to}` },
      { id: 'active-weekly', label: 'Active users (7 days)', value: active.weekly },
      { id: 'active-monthly', label: 'Active users (30 days)', value: active.monthly },
      { id: 'active-period', label: 'Active users (period)', value: active.period },
      { id: 'sign-ins', label: 'Sign-ins', value: t.sign_ins },
      { id: 'failed-sign-ins', label: 'Failed sign-ins', value: t.failed_sign_ins },
      { id: 'projects-created', label: 'Projects created', value: t.projects_created },
      { id: 'generations', label: 'Generations', value: t.generations },
      { id: 'generations-failed', label: 'Failed generations', value: t.generations_failed },
      { id: 'generation-success', label: 'Generation success', value: formatRate(t.success_rate) },
      { id: 'mesh-jobs', label: 'Mesh jobs', value: t.mesh_jobs },
      { id: 'mesh-jobs-failed', label: 'Failed mesh jobs', value: t.mesh_jobs_failed },
      { id: 'exports', label: 'Exports', value: t.exports },
      { id: 'requests', label: 'API requests', value: t.requests },
      { id: 'client-errors', label: '4xx answers', value: t.client_errors },
      { id: 'server-errors', label: '5xx answers', value: t.server_errors },
      { id: 'gpu-time', label: 'GPU time', value: formatDuration(t.gpu_s) },
      { id: 'dedup-hit-rate', label: 'Dedup hit rate', value: formatRate(dedup.hit_rate),
        hint: `${dedup.hits} cache hits and ${dedup.joins} joins of ${dedup.requests} requests` },
      { id: 'gpu-saved', label: 'GPU time saved', value: formatDuration(dedup.saved_gpu_s) },
    ]} />
  )
}
