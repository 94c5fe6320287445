/**
 * Asking for a mesh's analysis until it is there. A finished analysis reaches its read model
 * a moment after its job does (the server answers 202, without figures, meanwhile), and a mesh
 * that a repair, style or optimise made is analysed by the studio itself: the mesh panel waits
 * for those figures instead of showing none until someone presses Analyse.
 */

/** How the panel asks when it starts showing a mesh. */
export interface AnalysisWait {
  /** How many times to ask, `INTERVAL_MS` apart. */
  tries: number
  /** Keep asking while the server says the mesh has no analysis (404): the studio's own
   *  analysis of a mesh an operation made may not be listed yet. Otherwise a 404 ends it. */
  expected: boolean
}

export const INTERVAL_MS = 500
/** Two minutes: an analysis queued behind other jobs on a busy mesh worker. */
export const MADE_MESH_TRIES = 240

/** A mesh an operation made: wait for the studio's analysis. Any other: ask once (the
 *  Analyse button offers one where there is none). */
export function firstLoad(madeByOperation: boolean): AnalysisWait {
  return madeByOperation ? { tries: MADE_MESH_TRIES, expected: true } : { tries: 1, expected: false }
}

/**
 * The analysis once it has figures; `null` where the mesh has none and none is expected;
 * `undefined` when the tries ran out or `wanted()` turned false (the panel shows another mesh).
 */
export async function waitForAnalysis<A extends { stats?: unknown }>(
  fetchAnalysis: () => Promise<A>, wait: AnalysisWait, wanted: () => boolean = () => true,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<A | null | undefined> {
  for (let i = 0; i < wait.tries && wanted(); i++) {
    if (i > 0) await sleep(INTERVAL_MS)
    if (!wanted()) return undefined
    try {
      const answer = await fetchAnalysis()
      if (answer.stats) return wanted() ? answer : undefined
    } catch {
      if (!wait.expected) return wanted() ? null : undefined
    }
  }
  return undefined
}
