import { type InvalidField, InvalidInputError } from '../errors.js';

/**
 * The in-process stand-in for "serialise to JSON, parse on the other side": a structural copy of
 * a message graph that is, for the receiver, what `JSON.parse(JSON.stringify(value))` would give,
 * at O(nodes) instead of O(bytes) — only immutable values (strings, numbers, booleans, null) are
 * shared, so a 10 KiB string costs one node.
 *
 * JSON rules kept: members holding `undefined` vanish, `toJSON()` is honoured (a `Date` arrives as
 * its ISO string), symbol-keyed and non-enumerable members are ignored, shared sub-objects are
 * copied once per reference, an own `__proto__` key stays an own key (as `JSON.parse` makes it).
 *
 * Stricter than JSON where JSON would silently lose data: functions, symbols, bigints, NaN and
 * ±Infinity, `undefined` (or a hole) inside an array, instances of classes without `toJSON`
 * (`Map`, `Set`, typed arrays, …) and cycles are refused. A message that passes here therefore
 * travels unchanged over a JSON wire (AMQP) too.
 */

/** Why a value could not be copied, and where (JSON pointer segments, innermost first). */
class Unsendable {
  readonly segments: string[] = [];
  constructor(readonly reason: string) {}
}

/**
 * Set per copy: Object.prototype has enumerable members (polluted), so for-in would also yield
 * inherited keys and every level goes through Object.keys instead.
 */
let careful = false;

/** Nesting depth from which ancestors are searched for a cycle; below it, no cycle can hide. */
const CYCLE_CHECK_DEPTH = 32;
/** JSON.stringify would overflow the stack long before this; so do we, with a typed error. */
const MAX_DEPTH = 4096;

/**
 * Copy a transport message (a JSON object) for another party.
 * @throws InvalidInputError naming the offending path when the message is not a plain JSON object
 *   or holds something JSON cannot carry faithfully.
 */
export function copyMessage(message: unknown, what: string): Record<string, unknown> {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw new InvalidInputError(`A transport ${what} must be a JSON object`, [
      { path: '/', message: 'must be an object' },
    ]);
  }
  const ancestors: object[] = [];
  let copy: unknown;
  try {
    careful = !prototypeIsClean();
    copy = copyValue(message, ancestors);
  } catch (error) {
    if (!(error instanceof Unsendable)) throw error;
    const path = `/${error.segments.reverse().join('/')}`;
    const fields: InvalidField[] = [
      { path: error.segments.length === 0 ? '/' : path, message: error.reason },
    ];
    throw new InvalidInputError(
      `A transport ${what} must be JSON-serialisable: ${error.reason} at ${fields[0]?.path}`,
      fields,
    );
  }
  if (typeof copy !== 'object' || copy === null || Array.isArray(copy)) {
    throw new InvalidInputError(`A transport ${what} must be a JSON object`, [
      { path: '/', message: 'its toJSON() must return an object' },
    ]);
  }
  return copy as Record<string, unknown>;
}

/**
 * Copy a message that `copyMessage` produced (so already known to be plain JSON data): a broker
 * snapshot handed to one more receiver. Object spread copies a whole level at once (and defines an
 * own `__proto__` key as a data property, never as a prototype change); nested containers are
 * then replaced by their own copies.
 */
export function cloneCopied<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  return cloneContainer(value) as T;
}

function cloneContainer(value: object): object {
  if (Array.isArray(value)) {
    const length = value.length;
    const out = new Array(length);
    for (let i = 0; i < length; i++) {
      const item: unknown = value[i];
      out[i] = typeof item === 'object' && item !== null ? cloneContainer(item) : item;
    }
    return out;
  }
  const out: Record<string, unknown> = { ...value };
  for (const key in out) {
    const member = out[key];
    if (typeof member !== 'object' || member === null || !Object.hasOwn(out, key)) continue;
    if (key === '__proto__') defineOwn(out, key, cloneContainer(member));
    else out[key] = cloneContainer(member);
  }
  return out;
}

function copyValue(value: unknown, ancestors: object[]): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isFinite(value)) return value;
      throw new Unsendable(`${value} is not a JSON number`);
    case 'object':
      if (value === null) return null;
      return copyObject(value, ancestors);
    case 'undefined':
      throw new Unsendable('undefined is not a JSON value');
    default:
      throw new Unsendable(`a ${typeof value} is not a JSON value`);
  }
}

function copyObject(value: object, ancestors: object[]): unknown {
  const depth = ancestors.length;
  if (depth >= CYCLE_CHECK_DEPTH && ancestors.includes(value)) throw new Unsendable('a cycle');
  if (depth >= MAX_DEPTH) throw new Unsendable(`nesting deeper than ${MAX_DEPTH}`);
  if (Array.isArray(value)) {
    ancestors.push(value);
    const length = value.length;
    const out = new Array(length);
    for (let i = 0; i < length; i++) {
      try {
        out[i] = copyValue(value[i], ancestors);
      } catch (error) {
        if (error instanceof Unsendable) error.segments.push(String(i));
        throw error;
      }
    }
    ancestors.pop();
    return out;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      // JSON semantics: what toJSON() returns is what is sent (a Date becomes its ISO string).
      const replaced: unknown = toJSON.call(value, '');
      if (replaced === value) return copyPlainByKeys(value as Record<string, unknown>, ancestors);
      return copyValue(replaced, ancestors);
    }
    const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
    throw new Unsendable(
      `a ${typeof name === 'string' && name ? name : 'class instance'} is not plain JSON data`,
    );
  }
  // A plain object's own toJSON() is found by the member walk (see copyPlain), sparing every
  // object a lookup that misses all the way up to Object.prototype.
  return careful
    ? copyPlainByKeys(value as Record<string, unknown>, ancestors)
    : copyPlain(value as Record<string, unknown>, ancestors);
}

function copyPlain(value: Record<string, unknown>, ancestors: object[]): unknown {
  const depth = ancestors.length;
  ancestors.push(value);
  const out: Record<string, unknown> = {};
  // for-in yields own enumerable string keys only (no symbols, like JSON) while Object.prototype
  // has no enumerable members; copyMessage takes the Object.keys path when it has.
  for (const key in value) {
    const member = value[key];
    switch (typeof member) {
      case 'string':
      case 'boolean':
        out[key] = member;
        continue;
      case 'number':
        if (Number.isFinite(member)) {
          out[key] = member;
          continue;
        }
        break;
      case 'undefined':
        // JSON drops undefined members; so do we (optional fields set to undefined are common).
        continue;
      case 'object':
        if (member === null) {
          out[key] = null;
          continue;
        }
        break;
    }
    try {
      const copied = copyValue(member, ancestors);
      if (key === '__proto__') defineOwn(out, key, copied);
      else out[key] = copied;
    } catch (error) {
      if (!(error instanceof Unsendable)) throw error;
      // An own toJSON() (itself a function member) replaces the whole object, as in JSON: found
      // only here, sparing every plain object a lookup that misses up to Object.prototype.
      if (typeof value.toJSON === 'function' && Object.hasOwn(value, 'toJSON')) {
        ancestors.length = depth;
        return viaToJSON(value, ancestors);
      }
      error.segments.push(escapePointer(key));
      throw error;
    }
  }
  ancestors.pop();
  return out;
}

/** True while Object.prototype has no enumerable member, i.e. for-in over a plain object sees own keys only. */
function prototypeIsClean(): boolean {
  for (const _ in Object.prototype) return false;
  return true;
}

/** What JSON does with an object whose toJSON() is its own member. */
function viaToJSON(value: Record<string, unknown>, ancestors: object[]): unknown {
  const replaced: unknown = (value.toJSON as (key: string) => unknown).call(value, '');
  return replaced === value
    ? copyPlainByKeys(withoutToJSON(value), ancestors)
    : copyValue(replaced, ancestors);
}

function withoutToJSON(value: Record<string, unknown>): Record<string, unknown> {
  const { toJSON: _, ...rest } = value;
  return rest;
}

/** Member by member through Object.keys: own keys only, whatever Object.prototype holds. */
function copyPlainByKeys(value: Record<string, unknown>, ancestors: object[]): Record<string, unknown> {
  if (Object.hasOwn(value, 'toJSON') && typeof value.toJSON === 'function') {
    return viaToJSON(value, ancestors) as Record<string, unknown>;
  }
  ancestors.push(value);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const member = value[key];
    if (member === undefined) continue;
    try {
      const copied = copyValue(member, ancestors);
      if (key === '__proto__') defineOwn(out, key, copied);
      else out[key] = copied;
    } catch (error) {
      if (error instanceof Unsendable) error.segments.push(escapePointer(key));
      throw error;
    }
  }
  ancestors.pop();
  return out;
}

/** An own data property even for `__proto__`, as JSON.parse creates it (never a prototype change). */
function defineOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}
