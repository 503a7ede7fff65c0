import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The built files are committed (web/dist) and embedded in the `wetee` binary, so that
// `cargo build` never needs Node; CI builds them again and fails on any difference.
export default defineConfig({
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // One request less is not worth a binary blob in a diff.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
});
