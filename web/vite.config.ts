import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

// The api serves web/dist in production; `vite dev` proxies API and WebSocket calls to a local api.
export default defineConfig({
  plugins: [vue()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:3000',
      '/readyz': 'http://127.0.0.1:3000',
      '/ws': { target: 'ws://127.0.0.1:3000', ws: true },
    },
  },
});
