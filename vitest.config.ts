import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // The native addon is process-global state; forks keep each file in its own process.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // @ldclabs/cose-ts ships ESM with extensionless imports; let Vite resolve them.
    server: { deps: { inline: ['@ldclabs/cose-ts'] } },
  },
});
