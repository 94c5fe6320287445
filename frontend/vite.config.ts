import { defineConfig } from 'vitest/config'

// The workspace is built into dist/ and served by the API at / (api/app.py). During
// development `npx vite` proxies the API of a running `orfeas up` (ORFEAS_URL, default :8000).
const api = process.env.ORFEAS_URL ?? 'http://127.0.0.1:8000'

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 8000,
  },
  server: {
    proxy: {
      '/api': api,
      '/ws': { target: api.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
})
