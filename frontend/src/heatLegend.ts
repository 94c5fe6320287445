/**
 * The legend of a heat map: its quantity and unit, the colour ramp over the values the mesh
 * has, and ticks at their least and greatest (and at the printer's minimum wall).
 *
 * Overhang maps hold a severity s in 0..1 (workers/mesh/printability.py): a face leaning φ from
 * the vertical past the profile's overhang angle θ has s = (φ − θ) / (90° − θ), so the legend
 * reads φ = θ + s · (90° − θ) in degrees; s = 0 is any face that needs no support (φ ≤ θ).
 */
import { heatColour } from './faceMaps'

/** PrinterProfile's defaults (workers/mesh/printer.py), which the analysis used. */
export const OVERHANG_ANGLE_DEG = 45
export const MIN_WALL_MM = 0.8
/** The analysis stores thickness up to ten minimum walls (thicker reads as that). */
export const THICKNESS_CAP_WALLS = 10

export interface LegendTick {
  /** Along the ramp, 0 (left) to 1 (right). */
  at: number
  label: string
}

export interface Legend {
  title: string
  unit: string
  /** A CSS linear-gradient, left to right, from the least value to the greatest. */
  gradient: string
  ticks: LegendTick[]
  /** Faces without a value (thickness the analysis could not measure), if any. */
  unknown: number
}

const STEPS = 12

function css([r, g, b]: [number, number, number]): string {
  return `rgb(${Math.round(r * 255)}, ${Math.round(g * 255)}, ${Math.round(b * 255)})`
}

export function overhangDegrees(severity: number, angle = OVERHANG_ANGLE_DEG): number {
  return angle + severity * (90 - angle)
}

function round(value: number, digits: number): string {
  return String(Number(value.toFixed(digits)))
}

export function heatLegend(kind: string, values: Float32Array, limit = MIN_WALL_MM,
                           angle = OVERHANG_ANGLE_DEG): Legend {
  let low = Infinity
  let high = -Infinity
  let unknown = 0
  for (const v of values) {
    if (!Number.isFinite(v)) {
      unknown++
      continue
    }
    if (v < low) low = v
    if (v > high) high = v
  }
  if (low > high) low = high = 0 // nothing known: an empty ramp at zero
  const colours: string[] = []
  for (let i = 0; i <= STEPS; i++) {
    const v = low + ((high - low) * i) / STEPS
    colours.push(`${css(heatColour(kind, v, limit))} ${round((100 * i) / STEPS, 2)}%`)
  }
  const gradient = `linear-gradient(to right, ${colours.join(', ')})`
  if (kind === 'overhang') {
    const label = (s: number): string =>
      s <= 0 ? `≤ ${round(angle, 0)}°` : `${round(overhangDegrees(s, angle), 0)}°`
    return {
      title: 'Overhang from vertical', unit: 'degrees', gradient, unknown,
      ticks: [{ at: 0, label: label(low) }, { at: 1, label: label(high) }],
    }
  }
  const capped = (v: number): string =>
    `${v >= THICKNESS_CAP_WALLS * limit * 0.999 ? '≥ ' : ''}${round(v, 2)} mm`
  const ticks: LegendTick[] = [{ at: 0, label: capped(low) }, { at: 1, label: capped(high) }]
  if (limit > low && limit < high) {
    ticks.splice(1, 0, { at: (limit - low) / (high - low), label: `min wall ${round(limit, 2)}` })
  }
  return { title: 'Wall thickness', unit: 'mm', gradient, ticks, unknown }
}
