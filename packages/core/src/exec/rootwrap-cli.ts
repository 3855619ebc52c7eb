#!/usr/bin/env node
/**
 * `stratus-rootwrap <config> <command> [args...]`: run through sudo by services that are not root.
 * See `rootwrap.ts` and SECURITY.md for the sudoers line.
 */
import { runRootwrap } from './rootwrap.js';

process.exitCode = await runRootwrap(process.argv.slice(2));
