// Writes dist/config.schema.json from the typebox StratusConfig schema, so editors complete
// stratus.config.json ("$schema": "./node_modules/@stratus/core/dist/config.schema.json").
import { writeFile } from 'node:fs/promises';
import { StratusConfig } from '../dist/index.js';

const schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Stratus deployment configuration',
  ...StratusConfig,
};
await writeFile(new URL('../dist/config.schema.json', import.meta.url), `${JSON.stringify(schema, null, 2)}\n`);
