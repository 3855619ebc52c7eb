import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidStateError } from '@stratus/core';

/**
 * A fake backend's state kept in a JSON file (the drivers' `stateFile` option), so that it outlives
 * the process the way LVM volumes and running VMs outlive the service managing them, e.g. across a
 * SIGKILL. The fake writes it after every change that succeeded (see `FakeInstrument`'s `persist`).
 */
export class StateFile<S> {
  readonly path: string;
  /** Its folder exists (made on the first save, not again on every change). */
  #folderMade = false;

  /** @param file relative to `dataDir` unless absolute */
  constructor(file: string, dataDir: string) {
    this.path = path.resolve(dataDir, file);
  }

  /** The saved state, or undefined when nothing was saved yet. */
  load(): S | undefined {
    if (!existsSync(this.path)) return undefined;
    const text = readFileSync(this.path, 'utf8');
    try {
      return JSON.parse(text) as S;
    } catch (error) {
      throw new InvalidStateError(
        `The fake backend's state file ${this.path} is not valid JSON (${(error as Error).message}); restore it, or delete it to start with an empty backend.`,
        { details: { reason: 'state_file_unreadable', path: this.path } },
      );
    }
  }

  /** Write-then-rename: a process killed mid-write leaves the previous state, never a torn file. */
  save(state: S): void {
    if (!this.#folderMade) {
      mkdirSync(path.dirname(this.path), { recursive: true });
      this.#folderMade = true;
    }
    const temporary = `${this.path}.tmp`;
    writeFileSync(temporary, JSON.stringify(state));
    renameSync(temporary, this.path);
  }
}
