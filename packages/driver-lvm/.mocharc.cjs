module.exports = {
  'node-option': ['import=tsx'],
  spec: ['test/**/*.test.ts'],
  // The real-LVM suite needs the lvm-vm harness and minutes of emulated time: `pnpm test:vm` runs it.
  ignore: ['test/vm/**'],
  timeout: 10000,
  forbidOnly: Boolean(process.env.CI),
};
