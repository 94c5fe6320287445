export interface Figure {
  label: string
  value: string | number
  /** The `data-figure` the page's tests and scripts find it by. */
  id: string
  hint?: string
}

/** The period's headline figures as a definition list, each findable by its id. */
export function Figures({ figures, label }: { figures: Figure[]; label: string }) {
  return (
    <dl className="admin-figures" aria-label={label}>
      {figures.map((f) => (
        <div key={f.id} data-figure={f.id} title={f.hint}>
          <dt>{f.label}</dt>
          <dd>{f.value}</dd>
        </div>
      ))}
    </dl>
  )
}
