// Vite settings. `npm run build` writes the app to dist/, which the Rust server serves at `/`.
//
// For `npm run dev`, requests to /api and /ws go to a running Paranimo server
// (PARANIMO_DEV_SERVER, default http://127.0.0.1:8080). The server refuses writes whose Origin
// is not its PUBLIC_ORIGIN, so start it with PUBLIC_ORIGIN=http://127.0.0.1:5173 for dev.
import { defineConfig } from 'vite';

const backend = process.env.PARANIMO_DEV_SERVER ?? 'http://127.0.0.1:8080';

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: {
      '/api': { target: backend },
      '/ws': { target: backend, ws: true },
    },
  },
});
