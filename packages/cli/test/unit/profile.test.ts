import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { CliError } from '../../src/exit.js';
import { readProfile, resolveConnection, writeProfile } from '../../src/profile.js';
import { tempDir } from '../support/cli.js';
import { fakeIo } from '../support/io.js';

describe('profile and connection settings', () => {
  let dir: string;
  let remove: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, remove } = await tempDir());
  });
  afterEach(() => remove());

  const profile = {
    endpoint: 'http://127.0.0.1:9/',
    username: 'admin',
    password: 'pw-profile',
    project: 'admin',
  };

  it('writes the profile readable by its owner only', async () => {
    const file = path.join(dir, '.stratus', 'profile.json');
    await writeProfile(file, profile);
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    expect(await readProfile(file)).to.deep.equal(profile);
  });

  it('finds ./.stratus/profile.json with no flags', async () => {
    await writeProfile(path.join(dir, '.stratus', 'profile.json'), profile);
    const connection = await resolveConnection({}, fakeIo({ cwd: dir }).io);
    expect(connection).to.include({
      endpoint: 'http://127.0.0.1:9',
      username: 'admin',
      password: 'pw-profile',
    });
  });

  it('takes flags over environment over the profile, field by field', async () => {
    await writeProfile(path.join(dir, '.stratus', 'profile.json'), profile);
    const { io } = fakeIo({ cwd: dir, env: { STRATUS_PASSWORD: 'pw-env', OS_PROJECT_NAME: 'demo' } });
    const connection = await resolveConnection({ username: 'alice', endpoint: 'http://h:1/v3' }, io);
    expect(connection).to.include({
      endpoint: 'http://h:1',
      username: 'alice',
      password: 'pw-env',
      project: 'demo',
    });
  });

  it('says how to start a deployment when none is found (exit 4)', async () => {
    const error = await resolveConnection({}, fakeIo({ cwd: dir }).io).then(
      () => undefined,
      (e: CliError) => e,
    );
    expect(error?.exitCode).to.equal(4);
    expect(error?.hint).to.include('stratus up');
  });

  it('reports a broken profile by field', async () => {
    const file = path.join(dir, 'p.json');
    await writeFile(file, JSON.stringify({ endpoint: 'x', username: 3 }));
    const error = await readProfile(file).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).to.include('/username must be a non-empty string');
    expect(error?.message).to.include('/password must be a non-empty string');
  });
});
