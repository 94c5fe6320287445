import { useRef, useState } from 'react'
import { errorMessage, problemOf } from '../api'
import { ErrorMessage } from '../components/ErrorMessage'
import { usageChanged } from '../usage'

export interface UploadedMesh {
  id: string
  filename: string
  blob_key: string
  kind: string
}

interface Props {
  projectId: string
  canEdit: boolean
  onImported: (mesh: UploadedMesh) => void
}

const ACCEPT = '.stl,.obj,.ply,.off,.glb,.gltf,.3mf'

/** Upload a mesh file into the project; the workspace then places it in the scene. */
export function ImportMesh({ projectId, canEdit, onImported }: Props) {
  const input = useRef<HTMLInputElement>(null)
  const [units, setUnits] = useState('mm')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)

  async function upload(file: File | undefined): Promise<void> {
    if (!file) return
    setBusy(true)
    setError(null)
    try {
      const form = new FormData()
      form.append('file', file, file.name)
      const response = await fetch(
        `/api/v1/projects/${encodeURIComponent(projectId)}/assets?units=${units}`,
        { method: 'POST', body: form, credentials: 'same-origin' })
      if (!response.ok) throw await problemOf(response)
      const asset = (await response.json()) as UploadedMesh
      usageChanged() // its bytes count towards the storage limit
      if (asset.kind !== 'mesh') throw new Error(`${file.name} is not a mesh`)
      onImported(asset)
    } catch (e) {
      setError(errorMessage(e))
    } finally {
      setBusy(false)
    }
  }

  return (
    <section className="import-mesh" aria-label="Import a mesh">
      <h4>Import a mesh</h4>
      <div className="field-grid">
        <label>
          Units
          <select value={units} disabled={!canEdit || busy} onChange={(e) => setUnits(e.target.value)}>
            {['mm', 'cm', 'm', 'in'].map((u) => <option key={u} value={u}>{u}</option>)}
          </select>
        </label>
        <button type="button" disabled={!canEdit || busy} onClick={() => input.current?.click()}>
          {busy ? 'Uploading…' : 'Choose a mesh…'}
        </button>
      </div>
      <input ref={input} type="file" accept={ACCEPT} hidden data-testid="mesh-input"
        onChange={(e) => { void upload(e.target.files?.[0]); e.target.value = '' }} />
      <p className="muted small-text">STL, OBJ, PLY, OFF, glTF/GLB or 3MF.</p>
      {error && <ErrorMessage message={error} onDismiss={() => setError(null)} />}
    </section>
  )
}
