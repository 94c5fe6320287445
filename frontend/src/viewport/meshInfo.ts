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

/** The asset's description; a failed answer is forgotten, so the next caller asks again. */
export function meshInfo(assetId: string): Promise<MeshInfo> {
  let info = asked.get(assetId)
  if (!info) {
    info = fetch(`/api/v1/meshes/${encodeURIComponent(assetId)}`, { credentials: 'same-origin' })
      .then(async (response) => {
        if (!response.ok) throw new Error(`mesh ${assetId}: ${response.status}`)
        return await response.json() as MeshInfo
      })
    info.catch(() => asked.delete(assetId))
    asked.set(assetId, info)
  }
  return info
}
