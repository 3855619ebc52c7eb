import type { Service } from '@stratus/core';

/**
 * Control messages the deployment test sends to a `bin/serve.ts` child over its IPC channel. They
 * reach the in-memory fake drivers of that process, which no RPC or table exposes.
 */
export type ControlRequest =
  | {
      readonly type: 'fault';
      readonly id: number;
      /** Service name in the child's config (`volume`, `compute`). */
      readonly service: string;
      /** `hang`/`fail` the next `count` calls of `method`; `release` hung calls; `clear` everything. */
      readonly action: 'hang' | 'fail' | 'release' | 'clear';
      readonly method?: string;
      readonly count?: number;
    }
  | { readonly type: 'inspect'; readonly id: number; readonly service: string };

/** What the backend of one service holds: volume names or instance names. */
export interface BackendView {
  readonly volumes?: readonly string[];
  readonly instances?: readonly string[];
  /** Calls of the driver hung right now. */
  readonly hanging: number;
  /**
   * Creations the backend was asked for, per name, since the process started serving (see
   * `countCreates`): `createVolume` calls per volume, `spawn` calls per instance.
   */
  readonly createCalls: Readonly<Record<string, number>>;
}

export type ControlReply =
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly result: BackendView | number }
  | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly error: string };

/** Sent once by the child when every service of its config runs. */
export interface ReadyMessage {
  readonly type: 'ready';
  readonly host: string;
  readonly pid: number;
  readonly services: readonly string[];
}

/** The parts of the fake drivers (`@stratus/driver-fake`) the control messages use. */
interface FakeDriverLike {
  readonly faults: {
    hangNext(method: string, count?: number): unknown;
    failNext(method: string, count?: number): unknown;
    releaseHangs(): number;
    clear(): void;
    readonly hangingCount: number;
  };
  listVolumes?(): Promise<ReadonlyArray<{ readonly name: string }>>;
  listInstances?(): Promise<string[]>;
}

export function isControlRequest(message: unknown): message is ControlRequest {
  if (typeof message !== 'object' || message === null) return false;
  const m = message as { type?: unknown; id?: unknown; service?: unknown };
  return (
    (m.type === 'fault' || m.type === 'inspect') && typeof m.id === 'number' && typeof m.service === 'string'
  );
}

export function isReadyMessage(message: unknown): message is ReadyMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'ready';
}

export function isControlReply(message: unknown): message is ControlReply {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'reply' &&
    typeof (message as { id?: unknown }).id === 'number'
  );
}

/** Apply one control request to the services of this process; never throws. */
export async function handleControl(
  services: readonly Service[],
  request: ControlRequest,
): Promise<ControlReply> {
  try {
    const driver = fakeDriverOf(services, request.service);
    if (request.type === 'inspect') {
      const view: BackendView = {
        hanging: driver.faults.hangingCount,
        ...(driver.listVolumes ? { volumes: (await driver.listVolumes()).map((v) => v.name).sort() } : {}),
        ...(driver.listInstances ? { instances: (await driver.listInstances()).sort() } : {}),
        createCalls: createCalls(driver),
      };
      return { type: 'reply', id: request.id, ok: true, result: view };
    }
    switch (request.action) {
      case 'hang':
        driver.faults.hangNext(requireMethod(request), request.count ?? 1);
        return { type: 'reply', id: request.id, ok: true, result: request.count ?? 1 };
      case 'fail':
        driver.faults.failNext(requireMethod(request), request.count ?? 1);
        return { type: 'reply', id: request.id, ok: true, result: request.count ?? 1 };
      case 'release':
        return { type: 'reply', id: request.id, ok: true, result: driver.faults.releaseHangs() };
      case 'clear':
        driver.faults.clear();
        return { type: 'reply', id: request.id, ok: true, result: 0 };
    }
  } catch (error) {
    return { type: 'reply', id: request.id, ok: false, error: (error as Error).message };
  }
}

function requireMethod(request: { readonly method?: string; readonly action: string }): string {
  if (!request.method) throw new Error(`a "${request.action}" fault needs a method name`);
  return request.method;
}

function fakeDriverOf(services: readonly Service[], name: string): FakeDriverLike {
  const service = services.find((s) => s.name === name);
  if (!service) {
    throw new Error(`no service "${name}" runs here (running: ${services.map((s) => s.name).join(', ')})`);
  }
  const driver = service.manager?.driver as Partial<FakeDriverLike> | undefined;
  if (!driver?.faults) {
    throw new Error(
      `service "${name}" does not run a fake driver; fault injection needs @stratus/driver-fake`,
    );
  }
  return driver as FakeDriverLike;
}

/** Creation calls per backend name, per driver instance (see {@link countCreates}). */
const createCounts = new WeakMap<object, Map<string, number>>();

/** The driver methods that create something on the backend: a volume, an instance. */
const CREATE_METHODS = ['createVolume', 'spawn'] as const;

/**
 * Count every creation call of the services' drivers (`createVolume`, `spawn`), by the name of what it
 * creates. The fake's own call log keeps only its latest calls, too few for a run of a thousand creates.
 */
export function countCreates(services: readonly Service[]): void {
  for (const service of services) {
    const driver = service.manager?.driver as
      | Partial<
          Record<(typeof CREATE_METHODS)[number], (spec: { name?: unknown }, ...rest: unknown[]) => unknown>
        >
      | undefined;
    if (!driver || createCounts.has(driver)) continue;
    const counts = new Map<string, number>();
    createCounts.set(driver, counts);
    for (const method of CREATE_METHODS) {
      const original = driver[method];
      if (typeof original !== 'function') continue;
      driver[method] = (spec, ...rest) => {
        if (typeof spec?.name === 'string') counts.set(spec.name, (counts.get(spec.name) ?? 0) + 1);
        return original.call(driver, spec, ...rest);
      };
    }
  }
}

function createCalls(driver: FakeDriverLike): Record<string, number> {
  return Object.fromEntries(createCounts.get(driver) ?? []);
}
