module.exports = {
  'node-option': ['import=tsx'],
  spec: ['test/deploy/**/*.test.ts'],
  timeout: 10000,
  forbidOnly: Boolean(process.env.CI),
};
