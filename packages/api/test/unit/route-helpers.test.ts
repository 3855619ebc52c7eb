import { RequestContext } from '@stratus/core';
import { expect } from 'chai';
import {
  fetchAllPages,
  listedProjects,
  nextPageLinks,
  projectScopedContext,
  soleAction,
} from '../../src/routes/common.js';

describe('route helpers shared by Block Storage and Compute', () => {
  it('fetchAllPages follows the marker until a short page, in order', async () => {
    const items = Array.from({ length: 7 }, (_, i) => ({ id: `id-${i}` }));
    const asked: { limit: number; marker?: string }[] = [];
    const all = await fetchAllPages(async (page) => {
      asked.push(page);
      const start = page.marker === undefined ? 0 : items.findIndex((i) => i.id === page.marker) + 1;
      return items.slice(start, start + page.limit);
    }, 3);
    expect(all.map((i) => i.id)).to.deep.equal(items.map((i) => i.id));
    expect(asked).to.deep.equal([{ limit: 3 }, { limit: 3, marker: 'id-2' }, { limit: 3, marker: 'id-5' }]);
  });

  it('fetchAllPages asks once more after a full last page and stops on the empty one', async () => {
    let calls = 0;
    const all = await fetchAllPages(async (page) => {
      calls++;
      return page.marker === undefined ? [{ id: 'a' }, { id: 'b' }] : [];
    }, 2);
    expect(all.map((i) => i.id)).to.deep.equal(['a', 'b']);
    expect(calls).to.equal(2);
  });

  it('listedProjects shows the own project, and every or one project to an admin with all_tenants', () => {
    const member = new RequestContext({ projectId: 'p1', roles: ['member'] });
    const admin = new RequestContext({ projectId: 'p0', roles: ['admin'] });
    expect(['p0', 'p1', 'p2'].filter(listedProjects(member, '1', undefined))).to.deep.equal(['p1']);
    expect(['p0', 'p1', 'p2'].filter(listedProjects(admin, undefined, 'p2'))).to.deep.equal(['p0']);
    expect(['p0', 'p1', 'p2'].filter(listedProjects(admin, 'true', undefined))).to.deep.equal([
      'p0',
      'p1',
      'p2',
    ]);
    expect(['p0', 'p1', 'p2'].filter(listedProjects(admin, '1', 'p2'))).to.deep.equal(['p2']);
  });

  it('projectScopedContext is a non-admin of that project, keeping request and user ids', () => {
    const admin = new RequestContext({ requestId: 'req-1', userId: 'u1', projectId: 'p0', roles: ['admin'] });
    const scoped = projectScopedContext(admin, 'p9');
    expect(scoped).to.include({ requestId: 'req-1', userId: 'u1', projectId: 'p9', isAdmin: false });
    expect(scoped.roles).to.deep.equal([]);
  });

  it('nextPageLinks links the page after the last id with the same limit, and nothing on the last page', () => {
    expect(nextPageLinks('servers', 'http://h/v2.1/servers/detail', 2, undefined)).to.deep.equal({});
    expect(nextPageLinks('servers', 'http://h/v2.1/servers/detail', 2, 'id-1')).to.deep.equal({
      servers_links: [{ rel: 'next', href: 'http://h/v2.1/servers/detail?limit=2&marker=id-1' }],
    });
    expect(nextPageLinks('volumes', 'http://h/v/volumes', undefined, 'x y')).to.deep.equal({
      volumes_links: [{ rel: 'next', href: 'http://h/v/volumes?marker=x+y' }],
    });
  });

  it('soleAction names the one action of a body and refuses several', () => {
    expect(soleAction({ 'os-stop': null })).to.equal('os-stop');
    expect(() => soleAction({ pause: null, unpause: null }))
      .to.throw('Malformed request body')
      .with.property('code', 'INVALID_INPUT');
  });
});
