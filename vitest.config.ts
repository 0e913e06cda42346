import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    // @actions/workflow-parser imports its JSON schemas without an import attribute, which Node refuses
    // (actions/languageservices#387); inlined, Vite resolves those imports itself.
    server: { deps: { inline: ['@actions/workflow-parser'] } },
    hookTimeout: 60_000,
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: '.ci/vitest-results.json' },
  },
});
