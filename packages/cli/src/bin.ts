#!/usr/bin/env node
import { run } from './program.js';

const code = await run(process.argv.slice(2));
// Flush what was written before exiting: a pool or timer left open by a plugin must not keep the CLI alive.
process.stdout.write('', () => {
  process.stderr.write('', () => process.exit(code));
});
