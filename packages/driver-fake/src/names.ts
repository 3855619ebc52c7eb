import { InvalidInputError, schemaIssues } from '@stratus/core';
import type { TSchema } from 'typebox';

/** Backend names: what LVM and iSCSI accept without quoting, and what a command line can carry safely. */
export const BACKEND_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Throw InvalidInput naming `path` unless `name` matches BACKEND_NAME. */
export function checkName(name: unknown, path: string): void {
  if (typeof name !== 'string' || !BACKEND_NAME.test(name)) {
    throw new InvalidInputError('Invalid backend name', [
      {
        path,
        message: `${JSON.stringify(name)} must be 1-128 characters of letters, digits, ".", "_" or "-", starting with a letter or digit`,
      },
    ]);
  }
}

/** Throw InvalidInput listing every schema issue of `value`, with paths under `at`. */
export function checkShape(schema: TSchema, value: unknown, what: string, at = ''): void {
  const issues = schemaIssues(schema, value);
  if (issues.length) {
    throw new InvalidInputError(
      `Invalid ${what}`,
      issues.map((i) => ({ path: `${at}${i.path}`, message: i.message })),
    );
  }
}

/** Throw InvalidInput unless `size` is a whole number of GiB, at least 1. */
export function checkSize(size: unknown, path: string): asserts size is number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) {
    throw new InvalidInputError('Invalid size', [
      { path, message: `${JSON.stringify(size)} is not a whole number of GiB of at least 1` },
    ]);
  }
}
