// Installs from the registry and compiles better-sqlite3: minutes, not seconds.
module.exports = {
  'node-option': ['import=tsx'],
  spec: ['test/**/*.test.ts'],
  timeout: 15 * 60 * 1000,
  forbidOnly: Boolean(process.env.CI),
};
