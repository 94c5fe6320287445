import {
  eulerDegToQuat, quatToEulerDeg, type SceneObject, type Transform, type Vec3,
} from '../scene'
import type { MeshState } from '../viewport/Viewport'
import { NumberField } from './NumberField'

interface Props {
  object: SceneObject | null
  mesh: MeshState | undefined
  readOnly: boolean
  onTransform: (t: Transform) => void
  onToggle: (field: 'visible' | 'locked', value: boolean) => void
}

const AXES = ['X', 'Y', 'Z'] as const

interface RowProps {
  title: string
  values: Vec3
  disabled: boolean
  step: number
  onChange: (v: Vec3) => void
}

function VectorRow({ title, values, disabled, step, onChange }: RowProps) {
  return (
    <fieldset className="vector-row" disabled={disabled}>
      <legend>{title}</legend>
      {AXES.map((axis, i) => (
        <NumberField key={axis} label={`${title} ${axis}`} value={values[i]} step={step}
          disabled={disabled}
          onCommit={(v) => {
            const next = [...values] as Vec3
            next[i] = v
            onChange(next)
          }} />
      ))}
    </fieldset>
  )
}

export function PropertiesPanel({ object, mesh, readOnly, onTransform, onToggle }: Props) {
  if (!object) return <p className="muted">Select an object to see its properties.</p>
  const t = object.transform
  const locked = readOnly || object.locked
  return (
    <section className="properties" aria-label="Properties">
      <h3 className="object-title">{object.name}</h3>
      <p className="muted small-text">
        {object.stage ? `Stage: ${object.stage}` : object.asset ? 'Mesh' : 'No mesh'}
        {mesh?.triangles ? ` · ${mesh.triangles.toLocaleString('en')} triangles` : ''}
        {mesh?.shown && mesh.flat !== undefined ? ` · ${mesh.flat ? 'flat' : 'smooth'} shading` : ''}
      </p>
      {mesh?.error && <p className="error-text">{mesh.error}</p>}
      <VectorRow title="Position" values={t.position} disabled={locked} step={0.1}
        onChange={(position) => onTransform({ ...t, position })} />
      <VectorRow title="Rotation °" values={quatToEulerDeg(t.rotation)} disabled={locked} step={5}
        onChange={(deg) => onTransform({ ...t, rotation: eulerDegToQuat(deg) })} />
      <VectorRow title="Scale" values={t.scale} disabled={locked} step={0.1}
        onChange={(scale) => onTransform({ ...t, scale })} />
      <div className="toggles">
        <label>
          <input type="checkbox" checked={object.visible} disabled={readOnly}
            onChange={(e) => onToggle('visible', e.target.checked)} />
          Visible
        </label>
        <label>
          <input type="checkbox" checked={object.locked} disabled={readOnly}
            onChange={(e) => onToggle('locked', e.target.checked)} />
          Locked
        </label>
      </div>
    </section>
  )
}
