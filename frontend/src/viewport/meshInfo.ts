/**
 * What the server says about a mesh asset (its file name and what it was made from), asked
 * once per asset for this page. The default shading and the up axis both follow the same
 * chain of assets before a mesh can be loaded; each asking on its own put two round trips in
 * series before every first download (bench.workspace: page load to first visible mesh).
 */
export interface MeshInfo {
  filename: string
  derived_from: { asset_id: string; operation: string } | null
}

const asked = new Map<string, Promise<MeshInfo>>()

/** The asset's description; a failed answer is forgotten, so the next caller asks again.
 *  What is used of it never changes (an asset is a stored file: its name and what it was made
 *  from), so it is also kept for the tab: opening a workspace again (another project, a
 *  reload) then waits for no round trip before the first mesh can be loaded. */
export function meshInfo(assetId: string): Promise<MeshInfo> {
  let info = asked.get(assetId)
  if (!info) {
    const kept = rememberedInfo(assetId)
    info = kept ? Promise.resolve(kept)
      : fetch(`/api/v1/meshes/${encodeURIComponent(assetId)}`, { credentials: 'same-origin' })
        .then(async (response) => {
          if (!response.ok) throw new Error(`mesh ${assetId}: ${response.status}`)
          const body = await response.json() as MeshInfo
          const described = { filename: body.filename, derived_from: body.derived_from ?? null }
          rememberInfo(assetId, described)
          return described
        })
    info.catch(() => asked.delete(assetId))
    asked.set(assetId, info)
  }
  return info
}

const KEPT = 'orfeas.meshInfo.'

function rememberedInfo(assetId: string): MeshInfo | null {
  try {
    const text = globalThis.sessionStorage?.getItem(KEPT + assetId)
    const kept = text ? JSON.parse(text) as Partial<MeshInfo> : null
    return kept && typeof kept.filename === 'string' && kept.derived_from !== undefined
      ? { filename: kept.filename, derived_from: kept.derived_from } : null
  } catch {
    return null // no storage here, or not ours
  }
}

function rememberInfo(assetId: string, info: MeshInfo): void {
  try {
    globalThis.sessionStorage?.setItem(KEPT + assetId, JSON.stringify(info))
  } catch {
    // storage refused or full: asked again next time
  }
}
