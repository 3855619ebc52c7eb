import { expect } from 'chai';
import { StratusError } from '../../src/errors.js';
import { cloneCopied, copyMessage } from '../../src/rpc/json-copy.js';

/** The containers (objects and arrays) reachable from `value`. */
function containers(value: unknown, into: object[] = []): object[] {
  if (typeof value !== 'object' || value === null) return into;
  into.push(value);
  for (const member of Object.values(value)) containers(member, into);
  return into;
}

function refusal(message: unknown): {
  code: string;
  message: string;
  fields: { path: string; message: string }[];
} {
  try {
    copyMessage(message, 'message');
  } catch (error) {
    expect(StratusError.is(error, 'INVALID_INPUT'), String(error)).to.equal(true);
    return error as never;
  }
  throw new Error(`copyMessage accepted ${String(message)}`);
}

describe("rpc: copyMessage (the memory transport's stand-in for a JSON round trip)", () => {
  const sample = () => ({
    id: 'm1',
    n: 1.5,
    yes: true,
    nothing: null,
    text: 'x'.repeat(10 * 1024),
    list: [1, 'two', { three: [3] }, [], null],
    nested: { deep: { deeper: { deepest: 'value' } } },
    empty: {},
  });

  it('gives what JSON.parse(JSON.stringify()) gives', () => {
    const message = sample();
    expect(copyMessage(message, 'message')).to.deep.equal(JSON.parse(JSON.stringify(message)));
  });

  it('shares no object or array with the original, only immutable values', () => {
    const message = sample();
    const copy = copyMessage(message, 'message');
    const originals = new Set(containers(message));
    const copies = containers(copy);
    expect(copies).to.have.length(originals.size);
    for (const c of copies) expect(originals.has(c), 'a container is shared').to.equal(false);
    expect(copy.text).to.equal(message.text);
  });

  it('a sub-object referenced twice is copied once per reference, as JSON does', () => {
    const shared = { v: 1 };
    const copy = copyMessage({ a: shared, b: shared }, 'message') as { a: object; b: object };
    expect(copy.a).to.deep.equal({ v: 1 });
    expect(copy.a).not.to.equal(copy.b);
  });

  it('keeps the JSON rules: undefined members vanish, toJSON() is honoured, symbol keys ignored', () => {
    const when = new Date('2011-09-22T00:00:00.000Z');
    const copy = copyMessage(
      {
        when,
        gone: undefined,
        custom: { toJSON: () => ({ shown: true }) },
        [Symbol('hidden')]: { secret: true },
        list: [when],
      },
      'message',
    );
    expect(copy).to.deep.equal({
      when: '2011-09-22T00:00:00.000Z',
      custom: { shown: true },
      list: ['2011-09-22T00:00:00.000Z'],
    });
    expect(Object.getOwnPropertySymbols(copy)).to.deep.equal([]);
    expect(Object.hasOwn(copy, 'gone')).to.equal(false);
  });

  it('an own toJSON() replaces the object before its other members are looked at, as in JSON', () => {
    const self = {
      a: 1,
      toJSON() {
        return this;
      },
    };
    const message = {
      first: { f: () => 1, n: Number.NaN, toJSON: () => ({ ok: true }) },
      list: [{ toJSON: () => 'text' }],
      self,
    };
    const copy = copyMessage(message, 'message');
    expect(copy).to.deep.equal(JSON.parse(JSON.stringify(message)));
    expect(copy).to.deep.equal({ first: { ok: true }, list: ['text'], self: { a: 1 } });
  });

  it('an own __proto__ key stays an own key, as after JSON.parse, and changes no prototype', () => {
    const message = JSON.parse('{"__proto__":{"polluted":true},"nested":{"__proto__":{"x":1}}}') as Record<
      string,
      unknown
    >;
    for (const copy of [copyMessage(message, 'message'), cloneCopied(copyMessage(message, 'message'))]) {
      expect(Object.getPrototypeOf(copy)).to.equal(Object.prototype);
      expect(Object.keys(copy)).to.deep.equal(['__proto__', 'nested']);
      expect(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value).to.deep.equal({ polluted: true });
      expect((copy as { polluted?: unknown }).polluted).to.equal(undefined);
      const nested = copy.nested as object;
      expect(Object.getPrototypeOf(nested)).to.equal(Object.prototype);
      expect(Object.keys(nested)).to.deep.equal(['__proto__']);
    }
  });

  it('copies only own keys even while Object.prototype has an enumerable member', () => {
    Object.defineProperty(Object.prototype, 'injected', {
      value: { evil: true },
      enumerable: true,
      configurable: true,
      writable: true,
    });
    try {
      const copy = copyMessage({ a: { b: 1 }, list: [{ c: 2 }] }, 'message');
      expect(Object.keys(copy)).to.deep.equal(['a', 'list']);
      expect(Object.keys(copy.a as object)).to.deep.equal(['b']);
      expect(Object.keys((copy.list as object[])[0] as object)).to.deep.equal(['c']);
      expect(Object.keys(cloneCopied(copy).a as object)).to.deep.equal(['b']);
    } finally {
      delete (Object.prototype as Record<string, unknown>).injected;
    }
  });

  describe('refuses what JSON would lose or mangle, naming where', () => {
    class Point {
      x = 1;
    }
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const deepCycle: Record<string, unknown> = {};
    let cursor = deepCycle;
    for (let i = 0; i < 40; i++) {
      const next: Record<string, unknown> = {};
      cursor.next = next;
      cursor = next;
    }
    cursor.back = deepCycle;
    const cases: [string, unknown, string][] = [
      ['a function', { args: { f: () => 1 } }, '/args/f'],
      ['a symbol', { s: Symbol('s') }, '/s'],
      ['a bigint', { big: 10n }, '/big'],
      ['NaN', { n: Number.NaN }, '/n'],
      ['Infinity', { list: [1, Number.POSITIVE_INFINITY] }, '/list/1'],
      ['-Infinity', { n: Number.NEGATIVE_INFINITY }, '/n'],
      ['undefined inside an array', { list: [1, undefined] }, '/list/1'],
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      ['a hole in an array', { list: [1, , 3] }, '/list/1'],
      ['a Map', { m: new Map([[1, 2]]) }, '/m'],
      ['a Set', { s: new Set([1]) }, '/s'],
      ['a typed array', { bytes: new Uint8Array(2) }, '/bytes'],
      ['a class instance', { p: new Point() }, '/p'],
      ['a cycle', cyclic, '/self'],
      ['a cycle deeper than the cheap check', deepCycle, '/next/next'],
      ['a key needing escapes', { 'a/b~c': { f: () => 1 } }, '/a~1b~0c/f'],
    ];
    for (const [what, message, path] of cases) {
      it(`${what}`, () => {
        const error = refusal(message);
        expect(error.message).to.include('must be JSON-serialisable');
        expect(error.fields).to.have.length(1);
        if (what.includes('cycle')) {
          // Found where the walk came back round: somewhere down the cycle's own path.
          expect(error.fields[0]?.message).to.equal('a cycle');
          expect(error.fields[0]?.path.startsWith(path)).to.equal(true);
        } else {
          expect(error.fields[0]?.path).to.equal(path);
        }
      });
    }

    it('anything but an object at the top', () => {
      for (const top of [[1, 2], 'text', 42, null, undefined]) {
        expect(refusal(top).fields).to.deep.equal([{ path: '/', message: 'must be an object' }]);
      }
    });
  });

  it('cloneCopied gives an independent copy of a copied message', () => {
    const copy = copyMessage(sample(), 'message');
    const clone = cloneCopied(copy);
    expect(clone).to.deep.equal(copy);
    const originals = new Set(containers(copy));
    for (const c of containers(clone)) expect(originals.has(c)).to.equal(false);
  });
});
