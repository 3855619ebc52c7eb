import { randomUUID } from 'node:crypto';
import type { VolumeDatabase } from '@stratus/manager-volume/client';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { type AllInOne, startSignedIn } from '../support/all-in-one.js';
import { call, type Session } from '../support/client.js';

/** The managers' largest page (Cinder's `osapi_max_limit`), which the API reads listings in. */
const PAGE = 1000;
const ALICE_SNAPSHOTS = PAGE + 2;
const BOB_SNAPSHOTS = 3;

describe('Block Storage usage past one page of snapshots', () => {
  let aio: AllInOne;
  let app: FastifyInstance;
  let alice: Session;
  let bob: Session;
  let admin: Session;

  before(async function () {
    this.timeout(30000);
    ({ aio, app, alice, bob, admin } = await startSignedIn());
    const db = aio.store.db as Kysely<VolumeDatabase>;
    // Rows straight into the store: the API would need a quota of 1000+ and a fake backend
    // round trip per snapshot to make this many.
    // One instant for every row: pages then split rows of the same created_at, ordered by id.
    const stamps = { created_at: new Date().toISOString(), updated_at: new Date().toISOString() };
    const volumeOf = async (projectId: string) => {
      const id = randomUUID();
      await db
        .insertInto('volumes')
        .values({
          id,
          project_id: projectId,
          user_id: null,
          host: 'aio-1',
          size_gib: 1,
          status: 'available',
          attach_status: 'detached',
          deleted: false,
          ...stamps,
        })
        .execute();
      return id;
    };
    const snapshots = (projectId: string, volumeId: string, count: number, deleted = false) =>
      Array.from({ length: count }, () => ({
        id: randomUUID(),
        project_id: projectId,
        user_id: null,
        volume_id: volumeId,
        volume_size_gib: 1,
        status: 'available' as const,
        deleted,
        ...stamps,
      }));
    const aliceVolume = await volumeOf(alice.projectId);
    const bobVolume = await volumeOf(bob.projectId);
    const rows = [
      ...snapshots(alice.projectId, aliceVolume, ALICE_SNAPSHOTS),
      ...snapshots(alice.projectId, aliceVolume, 5, true),
      ...snapshots(bob.projectId, bobVolume, BOB_SNAPSHOTS),
    ];
    for (let at = 0; at < rows.length; at += 200) {
      await db
        .insertInto('snapshots')
        .values(rows.slice(at, at + 200))
        .execute();
    }
  });
  after(async () => aio?.stop());

  async function absoluteLimits(session: Session) {
    const res = await call(app, session, 'GET', `${session.volumeRoot}/limits`);
    expect(res.statusCode, res.body).to.equal(200);
    return res.json().limits.absolute;
  }

  async function quotaUsage(session: Session, projectId: string) {
    const res = await call(
      app,
      session,
      'GET',
      `${session.volumeRoot}/os-quota-sets/${projectId}?usage=true`,
    );
    expect(res.statusCode, res.body).to.equal(200);
    return res.json().quota_set;
  }

  it('limits count every snapshot of the project, not only the first page', async () => {
    expect(await absoluteLimits(alice)).to.include({
      totalSnapshotsUsed: ALICE_SNAPSHOTS,
      totalVolumesUsed: 1,
      totalGigabytesUsed: 1,
    });
    expect(await absoluteLimits(bob)).to.include({ totalSnapshotsUsed: BOB_SNAPSHOTS });
  });

  it('quota sets with usage count every snapshot, for the project and for an admin asking about it', async () => {
    expect((await quotaUsage(alice, alice.projectId)).snapshots).to.include({ in_use: ALICE_SNAPSHOTS });
    expect((await quotaUsage(admin, alice.projectId)).snapshots).to.include({ in_use: ALICE_SNAPSHOTS });
  });

  it('the snapshot listing still holds every snapshot, page after page', async () => {
    const first = await call(app, alice, 'GET', `${alice.volumeRoot}/snapshots?limit=${PAGE}`);
    expect(first.statusCode, first.body).to.equal(200);
    expect(first.json().snapshots).to.have.length(PAGE);
    const next = new URL(first.json().snapshots_links[0].href);
    const rest = await call(app, alice, 'GET', `${alice.volumeRoot}/snapshots${next.search}`);
    expect(rest.statusCode, rest.body).to.equal(200);
    expect(rest.json().snapshots).to.have.length(ALICE_SNAPSHOTS - PAGE);
  });
});
