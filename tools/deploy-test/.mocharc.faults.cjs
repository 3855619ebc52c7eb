// The fault suite (issue #13): `pnpm --filter @stratus/deploy-test test:faults`.
module.exports = {
  'node-option': ['import=tsx'],
  spec: ['test/faults/**/*.test.ts'],
  timeout: 10000,
  forbidOnly: Boolean(process.env.CI),
};
