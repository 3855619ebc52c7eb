import type { Static, TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';

// typebox's Validator is generic over a context object; ours is always empty.
// biome-ignore lint/complexity/noBannedTypes: mirrors typebox's own `{}` context type
type NoContext = {};

import Value from 'typebox/value';
import type { InvalidField } from './errors.js';

const compiled = new WeakMap<TSchema, Validator<NoContext, TSchema>>();

/** A schema's checker, compiled once and kept for the schema's lifetime. */
export function validatorOf<T extends TSchema>(schema: T): Validator<NoContext, T> {
  let validator = compiled.get(schema);
  if (!validator) {
    validator = Compile(schema) as unknown as Validator<NoContext, TSchema>;
    compiled.set(schema, validator);
  }
  return validator as unknown as Validator<NoContext, T>;
}

/** Every problem with `value`, as JSON pointers and readable reasons; empty when valid. */
export function schemaIssues(schema: TSchema, value: unknown): InvalidField[] {
  const validator = validatorOf(schema);
  if (validator.Check(value)) return [];
  const issues: InvalidField[] = [];
  const seen = new Set<string>();
  for (const error of validator.Errors(value)) {
    // typebox reports an unknown key twice: once as `schema is false` at the key, once at its parent.
    if (error.keyword === 'boolean') continue;
    const { instancePath: path, message } = error;
    const params = error.params as Record<string, unknown>;
    if (error.keyword === 'additionalProperties' && Array.isArray(params.additionalProperties)) {
      for (const key of params.additionalProperties as string[]) {
        push(`${path}/${key}`, 'is not a known property');
      }
      continue;
    }
    if (error.keyword === 'required' && Array.isArray(params.requiredProperties)) {
      for (const key of params.requiredProperties as string[]) push(`${path}/${key}`, 'is required');
      continue;
    }
    push(path, message);
  }
  return issues;

  function push(path: string, message: string): void {
    const key = `${path}\0${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    issues.push({ path, message });
  }
}

/**
 * Defaults applied to a copy, then strict validation: unknown keys and wrong types are
 * reported, never coerced or stripped, so an operator sees every mistake.
 */
export function withDefaults<T extends TSchema>(
  schema: T,
  raw: unknown,
): { value: Static<T>; issues: InvalidField[] } {
  const value = Value.Default(schema, Value.Clone(raw ?? {})) as Static<T>;
  return { value, issues: schemaIssues(schema, value) };
}
