import { defineConfig } from 'vitest/config';

const quietEnvironment = {
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

export default defineConfig({
  test: {
    reporters: ['default', ['json', { outputFile: 'reports/vitest.json' }]],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/stack/**/*.test.ts'],
          env: quietEnvironment,
        },
      },
      {
        test: {
          name: 'integration',
          include: [
            'test/integration/**/*.test.ts',
            'test/browser/**/*.test.ts',
            'test/e2e/**/*.test.ts',
          ],
          env: quietEnvironment,
          globalSetup: ['test/support/globalSetup.ts'],
          // One moto server is shared; files run one at a time and each uses its own region.
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
