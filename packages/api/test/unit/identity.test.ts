import { coreMigrations, migrate, openDatabase, type Store } from '@stratus/core';
import { expect } from 'chai';
import sinon from 'sinon';
import {
  apiMigrations,
  hashPassword,
  IdentityStore,
  isPasswordHash,
  TokenStore,
  verifyPassword,
} from '../../src/index.js';

const CHEAP = { N: 1024 };

describe('passwords', () => {
  it('hashes to a self-describing scrypt string that verifies only the right password', async () => {
    const hash = await hashPassword('correct horse', CHEAP);
    expect(hash).to.match(/^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(hash).to.not.contain('correct horse');
    expect(isPasswordHash(hash)).to.equal(true);
    expect(await verifyPassword('correct horse', hash)).to.equal(true);
    expect(await verifyPassword('wrong horse', hash)).to.equal(false);
  });

  it('salts every hash', async () => {
    expect(await hashPassword('same', CHEAP)).to.not.equal(await hashPassword('same', CHEAP));
  });

  it('never matches a malformed or absurd hash, and refuses bad parameters', async () => {
    expect(await verifyPassword('x', 'plain-text')).to.equal(false);
    expect(await verifyPassword('x', 'scrypt$4294967296$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA')).to.equal(
      false,
    );
    expect(isPasswordHash('scrypt$1000$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA')).to.equal(false);
    let error: unknown;
    try {
      await hashPassword('', CHEAP);
    } catch (e) {
      error = e;
    }
    expect(error).to.have.property('code', 'INVALID_INPUT');
  });
});

describe('IdentityStore and TokenStore', () => {
  let store: Store;
  let identity: IdentityStore;
  let tokens: TokenStore;

  beforeEach(async () => {
    store = await openDatabase('sqlite::memory:');
    await migrate(store, [coreMigrations, apiMigrations]);
    identity = new IdentityStore(store, { hashOptions: CHEAP });
    tokens = new TokenStore(store);
  });
  afterEach(async () => {
    sinon.restore();
    await store.close();
  });

  it('addUser creates the project and roles; a second user of that name is a conflict', async () => {
    const user = await identity.addUser({
      name: 'carol',
      password: 'pw-carol',
      project: 'ops',
      roles: ['admin', 'member'],
    });
    const project = await identity.projectByName('ops');
    expect(project).to.not.equal(undefined);
    expect(await identity.rolesOf(user.id, project?.id as string)).to.deep.equal(['admin', 'member']);
    expect(await identity.checkPassword(user, 'pw-carol')).to.equal(true);
    let error: unknown;
    try {
      await identity.addUser({ name: 'carol', password: 'x', project: 'ops' });
    } catch (e) {
      error = e;
    }
    expect(error).to.have.property('code', 'CONFLICT');
  });

  it('setPassword replaces the password; an unknown user is NOT_FOUND', async () => {
    const user = await identity.addUser({ name: 'dave', password: 'old-pw', project: 'p' });
    await identity.setPassword('dave', 'new-pw');
    expect(await identity.checkPassword(user, 'old-pw')).to.equal(false);
    expect(await identity.checkPassword(user, 'new-pw')).to.equal(true);
    let error: unknown;
    try {
      await identity.setPassword('nobody', 'x');
    } catch (e) {
      error = e;
    }
    expect(error).to.have.property('code', 'NOT_FOUND');
  });

  it('bootstrap creates what is missing and keeps existing passwords; roles are only added', async () => {
    const passwordHash = await hashPassword('boot-pw', CHEAP);
    const first = await identity.bootstrap({
      projects: [{ name: 'extra' }],
      users: [{ name: 'erin', passwordHash, project: 'team', roles: ['member'] }],
    });
    expect(first.usersCreated).to.deep.equal(['erin']);
    expect(first.projectsCreated).to.include.members(['extra', 'team']);
    await identity.setPassword('erin', 'changed-pw');
    const second = await identity.bootstrap({
      projects: [{ name: 'extra' }],
      users: [{ name: 'erin', passwordHash, project: 'team', roles: ['member', 'admin'] }],
    });
    expect(second).to.deep.equal({ projectsCreated: [], usersCreated: [], rolesAssigned: 1 });
    const erin = await identity.userByName('erin');
    expect(await identity.checkPassword(erin, 'changed-pw')).to.equal(true);
  });

  it('stores only the SHA-256 of a token; validates until expiry or revocation', async () => {
    const user = await identity.addUser({ name: 'frank', password: 'pw', project: 'p' });
    const { token } = await tokens.issue({
      userId: user.id,
      projectId: null,
      methods: ['password'],
      expiresAt: new Date(Date.now() + 60_000),
    });
    const rows = await store.db.selectFrom('tokens').selectAll().execute();
    expect(JSON.stringify(rows)).to.not.contain(token);
    expect((await tokens.validate(token))?.userId).to.equal(user.id);
    const clock = sinon.useFakeTimers({ now: Date.now() + 61_000, toFake: ['Date'] });
    expect(await tokens.validate(token)).to.equal(undefined);
    clock.restore();
    expect(await tokens.revoke(token)).to.equal(true);
    expect(await tokens.validate(token)).to.equal(undefined);
    expect(await tokens.revoke(token)).to.equal(false);
  });

  it('purges tokens long expired', async () => {
    const user = await identity.addUser({ name: 'gina', password: 'pw', project: 'p' });
    await tokens.issue({
      userId: user.id,
      projectId: null,
      methods: ['password'],
      expiresAt: new Date(Date.now() - 7200_000),
    });
    await tokens.issue({
      userId: user.id,
      projectId: null,
      methods: ['password'],
      expiresAt: new Date(Date.now() + 60_000),
    });
    expect(await tokens.purgeExpired(3600)).to.equal(1);
  });
});
