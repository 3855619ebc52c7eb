#!/usr/bin/env node
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type DriverKind, ScaffoldError, scaffold } from './scaffold.js';

const USAGE = `Usage: create-driver <package-name> [--dir <folder>] [--kind volume-driver] [--core-range <range>]

Scaffolds a Stratus driver package: manifest, config schema, a skeleton driver that passes the
conformance suite, the 3-line conformance test and a README.

  npm init @stratus/driver @acme/stratus-driver-ceph
  pnpm create @stratus/driver @acme/stratus-driver-ceph`;

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [packageName] = positionals;
  if (!packageName || positionals.length > 1) {
    console.error(USAGE);
    return 2;
  }
  try {
    const result = await scaffold({
      packageName,
      ...(values.dir ? { dir: values.dir } : {}),
      ...(values.kind ? { kind: values.kind as DriverKind } : {}),
      ...(values['core-range'] ? { coreRange: values['core-range'] } : {}),
    });
    const where = path.relative(process.cwd(), result.dir) || '.';
    console.log(`Created ${packageName} in ${where}:`);
    for (const f of result.files) console.log(`  ${f}`);
    console.log(`\nNext:\n  cd ${where}\n  npm install\n  npm test`);
    return 0;
  } catch (error) {
    if (error instanceof ScaffoldError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      kind: { type: 'string' },
      'core-range': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

process.exitCode = await main(process.argv.slice(2));
