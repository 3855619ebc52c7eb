import type { PowerState } from '@stratus/core';
import type { TaskState, VmState } from './types.js';

/** One state-changing action: where it may start, what it is called meanwhile, where it ends. */
export interface ActionRule {
  /** Wire method sent to `compute.<host>`. */
  readonly method: string;
  /** Word used in messages ("pause"). */
  readonly verb: string;
  /** vm_states the action may start from (and task_state must be null). */
  readonly from: readonly VmState[];
  /** task_state while it runs. */
  readonly task: TaskState;
  /** vm_state once the driver is done. */
  readonly to: VmState;
}

/**
 * The transitions, as in Nova: the API moves `task_state` null → `task` only from `from` (one
 * conditional update), the manager runs the driver and sets `to` with `task_state` null. On a
 * driver failure the manager puts `task_state` back to null and keeps the vm_state.
 */
export const ACTIONS = {
  reboot_soft: {
    method: 'reboot_instance',
    verb: 'reboot',
    from: ['active'],
    task: 'rebooting',
    to: 'active',
  },
  reboot_hard: {
    method: 'reboot_instance',
    verb: 'hard-reboot',
    from: ['active', 'paused', 'stopped', 'error'],
    task: 'rebooting_hard',
    to: 'active',
  },
  stop: {
    method: 'stop_instance',
    verb: 'stop',
    from: ['active', 'paused', 'suspended'],
    task: 'stopping',
    to: 'stopped',
  },
  start: { method: 'start_instance', verb: 'start', from: ['stopped'], task: 'starting', to: 'active' },
  pause: { method: 'pause_instance', verb: 'pause', from: ['active'], task: 'pausing', to: 'paused' },
  unpause: { method: 'unpause_instance', verb: 'unpause', from: ['paused'], task: 'unpausing', to: 'active' },
  suspend: {
    method: 'suspend_instance',
    verb: 'suspend',
    from: ['active', 'paused'],
    task: 'suspending',
    to: 'suspended',
  },
  resume: { method: 'resume_instance', verb: 'resume', from: ['suspended'], task: 'resuming', to: 'active' },
  rescue: {
    method: 'rescue_instance',
    verb: 'rescue',
    from: ['active', 'stopped'],
    task: 'rescuing',
    to: 'rescued',
  },
  unrescue: {
    method: 'unrescue_instance',
    verb: 'unrescue',
    from: ['rescued'],
    task: 'unrescuing',
    to: 'active',
  },
} as const satisfies Record<string, ActionRule>;

export type ActionName = keyof typeof ACTIONS;

/** vm_states an instance may be terminated from (any but deleted; task_state anything but deleting). */
export const TERMINABLE: readonly VmState[] = [
  'building',
  'active',
  'paused',
  'suspended',
  'stopped',
  'rescued',
  'error',
];

/** vm_states a volume may be attached in (task_state null). */
export const ATTACHABLE: readonly VmState[] = ['active', 'paused', 'suspended', 'stopped'];

/** vm_states a volume may be detached in (task_state null). */
export const DETACHABLE: readonly VmState[] = [
  'active',
  'paused',
  'suspended',
  'stopped',
  'rescued',
  'error',
];

/** vm_states whose console can be read. */
export const CONSOLE_READABLE: readonly VmState[] = ['active', 'paused', 'suspended', 'stopped', 'rescued'];

/** The vm_state a power state means, for settling an interrupted power action at start-up. */
export function vmStateOfPower(power: PowerState): VmState | undefined {
  switch (power) {
    case 'running':
      return 'active';
    case 'paused':
      return 'paused';
    case 'suspended':
      return 'suspended';
    case 'shutdown':
    case 'crashed':
      return 'stopped';
    default:
      return undefined;
  }
}
