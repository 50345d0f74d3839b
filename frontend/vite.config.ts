import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';
import { defineConfig } from 'vitest/config';

// `npm run dev` proxies the API to a running stack (`stylequeue dev`); point it elsewhere with
// STYLEQUEUE_API_URL. In production the API server itself serves dist/ at `/`.
const apiTarget = process.env.STYLEQUEUE_API_URL ?? 'http://127.0.0.1:8000';

export default defineConfig({
  plugins: [svelte(), svelteTesting()],
  base: '/',
  server: {
    proxy: { '/api': apiTarget, '/healthz': apiTarget },
  },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test-setup.ts'],
    include: ['src/**/*.test.ts'],
  },
});
