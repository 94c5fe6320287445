import { useCallback, useEffect, useState } from 'react'
import { api, errorMessage, type MaterialKind } from '../api'
import { type AnalysisWait, firstLoad, waitForAnalysis } from '../analysisWait'
import { ErrorMessage } from '../components/ErrorMessage'
import {
  madeMesh, meshApi, type JobRow, type MeshInfo, type MeshOperation,
} from '../meshJobs'
import {
  materialPreview, meanRoughness, roughnessRange, type MaterialPreview,
} from '../materialPreview'
import type { SceneObject } from '../scene'
import { upAxisOf } from '../viewport/upAxis'
import { useMeshJob } from './useMeshJob'

export type HeatMapKind = 'none' | 'overhang' | 'wall_thickness_mm'

interface Props {
  object: SceneObject | null
  canEdit: boolean
  heatMap: HeatMapKind
  onHeatMap: (kind: HeatMapKind, meshId: string | null) => void
  /** Show the material being chosen on the object (null: none), before it is applied. */
  onMaterialPreview: (preview: MaterialPreview | null) => void
}

type Analysis = Record<string, unknown> & {
  stats: Record<string, unknown> & {
    quality?: Record<string, unknown>
    printability?: Printability
  }
}

interface Recommendation {
  action: string
  params: Record<string, unknown>
  reason: string
  expected_score: number
  expected_change: number
}

interface Printability {
  score: number
  wall: { min_mm: number | null }
  thin: { area_fraction: number; limit_mm: number }
  overhang: { area_mm2: number; angle_deg: number }
  support: { volume_mm3: number }
  build: { fits_as_is: boolean; scale_needed: number | null; too_small?: boolean;
           min_size_mm?: number }
  print: { time_s: number; weight_g: number; material: string }
  recommendations: Recommendation[]
}

/** Recommendations a button applies; others (enlarge a part too small to print: generate it
 *  taller, or scale the object) are advice only. */
const APPLICABLE = new Set(['repair', 'reorient', 'scale', 'thicken', 'hollow'])

const STYLES = ['low_poly', 'organic', 'mechanical', 'futuristic', 'custom'] as const
const EXPORTS = ['glb', 'stl', 'obj', '3mf'] as const

/** The style option a slider sets, with its range, for each preset. */
const STYLE_KNOB: Record<string, { name: string; label: string; min: number; max: number;
                                   step: number; value: number }> = {
  low_poly: { name: 'ratio', label: 'Faces kept', min: 0.02, max: 1, step: 0.02, value: 0.1 },
  organic: { name: 'iterations', label: 'Smoothing passes', min: 0, max: 50, step: 1, value: 10 },
  mechanical: { name: 'angle', label: 'Plane angle °', min: 1, max: 45, step: 1, value: 12 },
  futuristic: { name: 'ratio', label: 'Facets kept', min: 0.01, max: 0.5, step: 0.01, value: 0.05 },
  custom: { name: 'detail', label: 'Detail', min: -1, max: 1, step: 0.1, value: 0 },
}

/** The mesh an object shows: a generation's result mesh, or the mesh asset it names. */
function useMeshOf(object: SceneObject | null): { mesh: MeshInfo | null; note: string | null } {
  const [state, setState] = useState<{ mesh: MeshInfo | null; note: string | null }>(
    { mesh: null, note: null })
  const jobId = object?.jobId ?? null
  const stage = object?.stage ?? null
  const asset = object?.asset ?? null
  useEffect(() => {
    let live = true
    const settle = (mesh: MeshInfo | null, note: string | null): void => {
      if (live) setState({ mesh, note })
    }
    async function resolve(): Promise<void> {
      if (jobId && stage) {
        const job = await meshApi.job(jobId)
        const made = madeMesh(job)
        if (!made) return settle(null, 'The generation has not made its final mesh yet.')
        return settle(await meshApi.info(made), null)
      }
      if (!asset) return settle(null, 'This object shows no mesh.')
      settle(await meshApi.info(asset), null)
    }
    resolve().catch((e: unknown) => settle(null, errorMessage(e)))
    return () => { live = false }
  }, [jobId, stage, asset])
  return state
}

function formatTime(seconds: number): string {
  const h = Math.floor(seconds / 3600)
  const m = Math.round((seconds % 3600) / 60)
  return h ? `${h} h ${m} min` : `${m} min`
}

/** A chained operation's word on the material the source wore: the worker made it again on
 *  the new surface (the rebuilt faces lose the old UVs). */
function keptMaterial(report: Record<string, unknown>): string {
  const worn = report.material as { material?: string } | undefined
  return worn?.material ? ` Material ${worn.material} kept.` : ''
}

export function MeshPanel({ object, canEdit, heatMap, onHeatMap, onMaterialPreview }: Props) {
  const { mesh, note } = useMeshOf(object)
  const job = useMeshJob()
  const [analysis, setAnalysis] = useState<Analysis | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [style, setStyle] = useState<string>('low_poly')
  const [knob, setKnob] = useState<number>(STYLE_KNOB.low_poly.value)
  const [materials, setMaterials] = useState<MaterialKind[]>([])
  const [material, setMaterial] = useState('plastic')
  const [previewing, setPreviewing] = useState(false)
  const [colour, setColour] = useState('#808080') // the kind's own once the kinds arrive
  const [roughness, setRoughness] = useState(0.5) // likewise
  const [seed, setSeed] = useState('0')
  const [steps, setSteps] = useState({ reorient: true, thicken: false, scale_to_fit: false })
  const meshId = mesh?.id ?? null
  const objectId = object?.id ?? null

  // Picking a kind starts from its own colour and roughness (wood looks like wood); both stay
  // the user's to change after that.
  const startFrom = (chosen: MaterialKind | undefined) => {
    if (!chosen) return
    setMaterial(chosen.kind)
    setColour(chosen.color)
    setRoughness(meanRoughness(chosen))
  }
  useEffect(() => {
    api.materials().then((r) => {
      setMaterials(r.materials)
      startFrom(r.materials.find((m) => m.kind === 'plastic') ?? r.materials[0])
    }).catch((e: unknown) => setError(`materials: ${errorMessage(e)}`))
  }, [])
  const kind = materials.find((m) => m.kind === material) ?? null

  useEffect(() => setPreviewing(false), [objectId]) // a preview belongs to one object
  useEffect(() => {
    if (!previewing || !objectId || !kind) return
    onMaterialPreview(materialPreview(objectId, kind, colour, roughness))
    return () => onMaterialPreview(null)
  }, [previewing, objectId, kind, colour, roughness, onMaterialPreview])

  // `wanted`: whether the panel still shows that mesh. No analysis (null): the button offers one.
  const loadAnalysis = useCallback(async (id: string, wait: AnalysisWait,
                                          wanted: () => boolean = () => true) => {
    const answer = await waitForAnalysis(() => meshApi.analysis(id) as Promise<Analysis>, wait,
                                         wanted)
    if (answer !== undefined) setAnalysis(answer)
  }, [])

  // After a repair, style or optimise the panel shows the new mesh's figures as soon as the
  // studio's own analysis of it lands, without anyone pressing Analyse.
  const madeByOperation = mesh?.derived_from != null
  useEffect(() => {
    setAnalysis(null)
    setError(null)
    if (!meshId) return
    let showing = true
    void loadAnalysis(meshId, firstLoad(madeByOperation), () => showing)
    return () => { showing = false }
  }, [meshId, madeByOperation, loadAnalysis])

  const run = useCallback(async (operation: MeshOperation, params: Record<string, unknown>) => {
    if (!meshId || !object) return
    setError(null)
    const onObject = operation === 'analysis' ? params : { ...params, object_id: object.id }
    const done: JobRow | null = await job.run(meshId, operation, onObject)
    if (done?.state === 'failed') setError(done.error ?? 'The job failed.')
    if (done?.state === 'succeeded' && operation === 'analysis') {
      await loadAnalysis(meshId, { tries: 40, expected: false })
    }
  }, [meshId, object, job, loadAnalysis])

  if (!object) return <p className="muted">Select an object to analyse, repair or restyle it.</p>
  if (!mesh) return <p className="muted" data-testid="mesh-note">{note ?? 'Finding the mesh…'}</p>

  const printability = analysis?.stats.printability
  const quality = analysis?.stats.quality
  const report = job.last?.state === 'succeeded' ? job.last.result?.report as
    Record<string, unknown> | undefined : undefined
  const disabled = !canEdit || job.running

  /** Judged standing as the viewer shows it: a Y-up mesh (generated, glTF, OBJ) is built
   *  along +y, a Z-up file (STL, 3MF) along +z, the analysis' default. */
  const analyse = async (): Promise<void> => {
    const up = await upAxisOf(object)
    await run('analysis', up === 'y' ? { up: [0, 1, 0] } : {})
  }

  const applyRecommendation = (r: Recommendation): void => {
    if (r.action === 'repair') void run('repair', {})
    else if (r.action === 'reorient') void run('optimise', { reorient: true })
    else if (r.action === 'scale') void run('optimise', { reorient: false, scale_to_fit: true })
    else if (r.action === 'thicken') void run('optimise', { reorient: false, thicken: true })
    else if (r.action === 'hollow') {
      void run('optimise', { reorient: false, hollow: r.params.wall_mm ?? 2,
                             printer: { technology: 'resin' } })
    }
  }

  return (
    <section className="mesh-panel" aria-label="Mesh">
      <h3 className="object-title">{object.name}</h3>
      <p className="muted small-text" data-testid="mesh-file">
        {mesh.filename} · {mesh.units}
        {mesh.derived_from ? ` · made by ${mesh.derived_from.operation.replace('mesh.', '')}` : ''}
      </p>

      {job.progress.phase !== 'idle' && (
        <div className="job" data-testid="mesh-job" data-phase={job.progress.phase}>
          <progress max={1} value={job.progress.fraction}
            aria-label={`${job.progress.operation ?? 'mesh'} progress`} />
          <p role="status">
            {job.progress.operation}: {job.progress.phase}
            {job.progress.error ? ` — ${job.progress.error}` : ''}
          </p>
          {job.running && job.progress.jobId && (
            <button type="button" onClick={() => void job.cancel()}>Cancel</button>
          )}
        </div>
      )}
      {error && <ErrorMessage message={error} onDismiss={() => setError(null)} />}

      <h4>Analysis</h4>
      <button type="button" disabled={disabled} onClick={() => void analyse()}>
        {analysis ? 'Analyse again' : 'Analyse'}
      </button>
      {analysis && (
        <dl className="stats" data-testid="mesh-stats">
          <dt>Faces</dt><dd>{Number(analysis.stats.faces).toLocaleString('en')}</dd>
          <dt>Volume</dt>
          <dd>{analysis.stats.volume == null ? '—' :
            `${Number(analysis.stats.volume).toFixed(1)} ${mesh.units}³`}</dd>
          <dt>Watertight</dt><dd>{analysis.stats.watertight ? 'yes' : 'no'}</dd>
          <dt>Bodies</dt><dd>{String(analysis.stats.shells)}</dd>
          {quality && <>
            <dt>Holes (open edges)</dt><dd>{String(quality.boundary_edges)}</dd>
            <dt>Non-manifold edges</dt><dd>{String(quality.non_manifold_edges)}</dd>
            <dt>Self-intersections</dt><dd>{String(quality.self_intersecting_faces)}</dd>
          </>}
          {printability && <>
            <dt>Printability</dt>
            <dd><strong data-testid="print-score">{Math.round(printability.score)}</strong> / 100</dd>
            <dt>Thinnest wall</dt>
            <dd>{printability.wall.min_mm == null ? '—' :
              `${printability.wall.min_mm.toFixed(2)} mm`}</dd>
            <dt>Overhang (&gt; {printability.overhang.angle_deg}°)</dt>
            <dd>{printability.overhang.area_mm2.toFixed(0)} mm²</dd>
            <dt>Support</dt><dd>{(printability.support.volume_mm3 / 1000).toFixed(1)} cm³</dd>
            <dt>Print</dt>
            <dd>{formatTime(printability.print.time_s)} · {printability.print.weight_g.toFixed(1)} g {printability.print.material}</dd>
            <dt>Fits the printer</dt>
            <dd data-testid="fits-printer">{printability.build.fits_as_is ? 'yes'
              : printability.build.too_small
                ? `no: too small to print (under ${printability.build.min_size_mm ?? '?'} mm)`
                : 'no'}</dd>
          </>}
        </dl>
      )}
      {printability && (
        <>
          <label>
            Heat map
            <select value={heatMap} onChange={(e) => onHeatMap(e.target.value as HeatMapKind, meshId)}>
              <option value="none">none</option>
              <option value="overhang">overhangs</option>
              <option value="wall_thickness_mm">wall thickness</option>
            </select>
          </label>
          {printability.recommendations.length > 0 && (
            <ul className="recommendations">
              {printability.recommendations.map((r) => (
                <li key={r.action}>
                  <span>{r.reason} (→ {Math.round(r.expected_score)})</span>
                  {APPLICABLE.has(r.action) && (
                    <button type="button" className="small" disabled={disabled}
                      onClick={() => applyRecommendation(r)}>
                      {r.action}
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
        </>
      )}

      <h4>Repair</h4>
      <button type="button" disabled={disabled} onClick={() => void run('repair', {})}>
        Repair for printing
      </button>
      {report && job.last?.kind === 'mesh.repair' && (
        <p className="small-text" data-testid="repair-result">
          Quality score {String((report.before as { score?: number })?.score)} →{' '}
          {String((report.after as { score?: number })?.score)}; holes filled{' '}
          {String(report.holes_filled)}, bodies kept {String(report.bodies_kept)}.
          {keptMaterial(report)}
        </p>
      )}

      <h4>Style</h4>
      <div className="field-grid">
        <label>
          Preset
          <select value={style} disabled={disabled} onChange={(e) => {
            setStyle(e.target.value)
            setKnob(STYLE_KNOB[e.target.value].value)
          }}>
            {STYLES.map((s) => <option key={s} value={s}>{s.replace('_', ' ')}</option>)}
          </select>
        </label>
        <label>
          {STYLE_KNOB[style].label}
          <input type="range" min={STYLE_KNOB[style].min} max={STYLE_KNOB[style].max}
            step={STYLE_KNOB[style].step} value={knob} disabled={disabled}
            onChange={(e) => setKnob(Number(e.target.value))} />
        </label>
      </div>
      <button type="button" disabled={disabled}
        onClick={() => void run('style', { style, [STYLE_KNOB[style].name]: knob })}>
        Apply style
      </button>

      <h4>Material</h4>
      <div className="field-grid">
        <label>
          Kind
          <select value={material} disabled={disabled || !kind}
            onChange={(e) => startFrom(materials.find((m) => m.kind === e.target.value))}>
            {materials.map((m) => <option key={m.kind} value={m.kind}>{m.kind}</option>)}
          </select>
        </label>
        <label>
          Colour
          <input type="color" value={colour} disabled={disabled}
            onChange={(e) => setColour(e.target.value)} />
        </label>
        <label>
          Seed
          <input type="number" min={0} value={seed} disabled={disabled}
            onChange={(e) => setSeed(e.target.value)} />
        </label>
        <label title="Glossy (0) to matte (1): the middle of the range the pattern spans">
          Roughness {roughness.toFixed(2)}
          <input type="range" min={0} max={1} step={0.01} value={roughness}
            disabled={disabled || !kind} onChange={(e) => setRoughness(Number(e.target.value))} />
        </label>
      </div>
      <div className="button-row">
        <button type="button" aria-pressed={previewing} disabled={!object || !kind}
          title="Show the kind and colour on the object now (only you see it)"
          onClick={() => setPreviewing((on) => !on)}>
          Preview
        </button>
        <button type="button" disabled={disabled || !kind} onClick={() => {
          setPreviewing(false)
          void run('material', {
            material, color: colour, seed: Number(seed) || 0,
            roughness: kind ? roughnessRange(kind, roughness) : undefined,
          })
        }}>
          Apply material
        </button>
      </div>

      <h4>Print optimiser</h4>
      <div className="toggles">
        {(['reorient', 'thicken', 'scale_to_fit'] as const).map((step) => (
          <label key={step}>
            <input type="checkbox" checked={steps[step]} disabled={disabled}
              onChange={(e) => setSteps({ ...steps, [step]: e.target.checked })} />
            {step.replace(/_/g, ' ')}
          </label>
        ))}
      </div>
      <button type="button" disabled={disabled} onClick={() => void run('optimise', steps)}>
        Optimise for print
      </button>
      {report && job.last?.kind === 'mesh.optimise' && (
        <p className="small-text" data-testid="optimise-result">
          Printability {Math.round(Number(report.score_before))} →{' '}
          {Math.round(Number(report.score_after))}.
          {keptMaterial(report)}
        </p>
      )}

      <h4>Export</h4>
      <p className="exports">
        {EXPORTS.map((f) => (
          <a key={f} className="button small" href={meshApi.exportUrl(mesh.id, f)} download>
            {f.toUpperCase()}
          </a>
        ))}
      </p>
    </section>
  )
}

/** Fetch a mesh's per-face maps (the server's compact binary) for the viewport's heat map. */
export async function fetchFaceMaps(meshId: string): Promise<ArrayBuffer> {
  const response = await fetch(meshApi.faceMapsUrl(meshId), { credentials: 'same-origin' })
  if (!response.ok) throw new Error(`no face maps: ${response.status}`)
  return response.arrayBuffer()
}
