/**
 * The meshopt decoder for EXT_meshopt_compression GLBs (the server packs meshes on request).
 * Babylon loads its decoder as a classic script, from its CDN by default, and then uses the
 * global `MeshoptDecoder`. The studio must work without the internet, so the decoder comes
 * from the bundled npm `meshoptimizer` package instead: it is made that global, and the
 * script Babylon loads is empty.
 */
import { MeshoptCompression } from '@babylonjs/core/Meshes/Compression/meshoptCompression'
import { MeshoptDecoder } from 'meshoptimizer/decoder'

;(globalThis as { MeshoptDecoder?: unknown }).MeshoptDecoder = MeshoptDecoder
MeshoptCompression.Configuration = { decoder: { url: 'data:text/javascript,' } }
