// Writes dist/config.schema.json from the typebox StratusConfig schema, so editors complete
// stratus.config.json ("$schema": "./node_modules/@stratus/core/dist/config.schema.json").
import { writeFile } from 'node:fs/promises';
import { StratusConfig } from '../dist/index.js';

/** A property with a default is optional to whoever writes the file. */
function optionalDefaults(node) {
  if (Array.isArray(node)) return node.map(optionalDefaults);
  if (node === null || typeof node !== 'object') return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, optionalDefaults(v)]));
  if (Array.isArray(out.required) && out.properties) {
    out.required = out.required.filter((key) => out.properties[key]?.default === undefined);
    if (out.required.length === 0) delete out.required;
  }
  return out;
}

const schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Stratus deployment configuration',
  ...optionalDefaults(StratusConfig),
};
await writeFile(
  new URL('../dist/config.schema.json', import.meta.url),
  `${JSON.stringify(schema, null, 2)}\n`,
);
