/**
 * The meshopt decoder for EXT_meshopt_compression GLBs (the server packs meshes on request).
 * Babylon loads its decoder as a classic script, from its CDN by default, and then uses the
 * global `MeshoptDecoder`. The studio must work without the internet, so the decoder comes
 * from the bundled npm `meshoptimizer` package instead: it is made that global, and the
 * script Babylon loads is empty.
 *
 * Two costs of Babylon's way came between a page's first download and its first mesh (a
 * Chromium trace of bench.workspace's page load, SwiftShader, 2 cores): the script was
 * loaded at the first decode, a task of its own after whatever the page's thread was busy
 * with; and each first decode started a worker (a thread, the decoder compiled again in it,
 * dropped again after a second without decoding) and sent every buffer there and back. The
 * script is now asked for with the view, and buffers are decoded on the page's thread, as
 * meshoptimizer does without workers: at its hundreds of megabytes a second, the largest
 * stage the studio makes (about 3 MB unpacked) takes a few milliseconds.
 */
import { MeshoptCompression } from '@babylonjs/core/Meshes/Compression/meshoptCompression'
import { MeshoptDecoder } from 'meshoptimizer/decoder'

;(globalThis as { MeshoptDecoder?: unknown }).MeshoptDecoder = {
  ...MeshoptDecoder,
  useWorkers: () => {}, // Babylon's ask for a worker per first decode: none
}
MeshoptCompression.Configuration = { decoder: { url: 'data:text/javascript,' } }

/** Loads the (empty) decoder script now; called when the view is made. */
export function prepareMeshopt(): void {
  void MeshoptCompression.Default
}
