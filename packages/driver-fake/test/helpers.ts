import {
  Executor,
  type PluginEnv,
  StratusError,
  type StratusErrorCode,
  silentLogger,
  withDefaults,
} from '@stratus/core';
import { expect } from 'chai';
import { FakeComputeConfig, FakeComputeDriver, FakeVolumeConfig, FakeVolumeDriver } from '../src/index.js';

export function env(host = 'fake-host'): PluginEnv {
  return {
    host,
    logger: silentLogger(),
    executor: new Executor({ filters: [] }),
    dataDir: '/nonexistent/stratus',
  };
}

export function volumeDriver(raw: Partial<FakeVolumeConfig> = {}): FakeVolumeDriver {
  const { value, issues } = withDefaults(FakeVolumeConfig, raw);
  expect(issues).to.deep.equal([]);
  return new FakeVolumeDriver(value, env());
}

export function computeDriver(raw: Partial<FakeComputeConfig> = {}, host?: string): FakeComputeDriver {
  const { value, issues } = withDefaults(FakeComputeConfig, raw);
  expect(issues).to.deep.equal([]);
  return new FakeComputeDriver(value, env(host));
}

/** Await `promise`, expecting a StratusError of `code`; returns it. */
export async function rejection(promise: Promise<unknown>, code: StratusErrorCode): Promise<StratusError> {
  try {
    await promise;
  } catch (error) {
    if (StratusError.is(error, code)) return error;
    throw new Error(`expected ${code}, got ${String(error)}`, { cause: error });
  }
  throw new Error(`expected ${code}, but it resolved`);
}

/** True when `promise` has not settled after a few turns of the event loop. */
export async function stillPending(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return !settled;
}

export const vol = (name: string, sizeGiB = 1) => ({ id: `id-${name}`, name, sizeGiB });
export const snap = (name: string, volumeName: string, volumeSizeGiB = 1) => ({
  id: `id-${name}`,
  name,
  volumeId: `id-${volumeName}`,
  volumeName,
  volumeSizeGiB,
});
export const flavor = (vcpus = 1, memoryMiB = 512, rootGiB = 1) => ({
  name: 'test.flavor',
  vcpus,
  memoryMiB,
  rootGiB,
});
export const inst = (name: string, f = flavor()) => ({
  id: `id-${name}`,
  name,
  imageRef: 'cirros',
  flavor: f,
});
