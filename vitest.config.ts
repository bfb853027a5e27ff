import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // The native addon is process-global state; forks keep each file in its own process.
    pool: 'forks',
    // Most test time is spent waiting on child processes (CLI, proxies, MCP servers);
    // two forks keep both cores busy without starving the timing-sensitive tests.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // @ldclabs/cose-ts ships ESM with extensionless imports; let Vite resolve them.
    server: { deps: { inline: ['@ldclabs/cose-ts'] } },
  },
});
