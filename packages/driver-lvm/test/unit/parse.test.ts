import { StratusError } from '@stratus/core';
import { expect } from 'chai';
import { parseLvs, parseTgtTargets, parseVgs } from '../../src/index.js';

function parseError(fn: () => unknown): StratusError {
  try {
    fn();
  } catch (e) {
    if (StratusError.is(e, 'DRIVER_FAILURE')) return e;
    throw e;
  }
  expect.fail('expected a DriverFailure');
}

describe('parsing vgs/lvs/tgtadm output', () => {
  describe('parseVgs', () => {
    it('reads the machine-readable columns as bytes (real lvm2 2.03.16 output)', () => {
      expect(parseVgs('  volumes|4290772992|4290772992|4194304|0\n')).to.deep.equal([
        { name: 'volumes', sizeBytes: 4290772992, freeBytes: 4290772992, extentBytes: 4194304, lvCount: 0 },
      ]);
    });

    it('reads several VGs and ignores blank lines', () => {
      const vgs = parseVgs('\n  a|10|5|4|1\n\n  b|20|20|4|0\n');
      expect(vgs.map((v) => v.name)).to.deep.equal(['a', 'b']);
    });

    it('returns nothing for empty output', () => {
      expect(parseVgs('')).to.deep.equal([]);
      expect(parseVgs('  \n')).to.deep.equal([]);
    });

    for (const [what, line] of [
      ['a locale decimal comma', '  volumes|4,00g|4290772992|4194304|0'],
      ['a unit suffix', '  volumes|4290772992B|4290772992|4194304|0'],
      ['a decimal point in bytes', '  volumes|4290772992.5|4290772992|4194304|0'],
      ['a missing column', '  volumes|4290772992|4290772992|4194304'],
      ['an extra column', '  volumes|1|1|1|0|x'],
      ['a warning on stdout', '  WARNING: something odd'],
      ['an empty name', '  |1|1|1|0'],
      ['a negative size', '  volumes|-1|1|1|0'],
    ] as const) {
      it(`refuses ${what} with DriverFailure unparseable_output, never a wrong number`, () => {
        const error = parseError(() => parseVgs(line));
        expect(error.details.reason).to.equal('unparseable_output');
        expect(error.message).to.include('LC_ALL=C');
      });
    }
  });

  describe('parseLvs', () => {
    it('reads thick, snapshot, thin, pool rows (real lvm2 output)', () => {
      const out = [
        '  _snapshot-a|swi-a-s---|1073741824|volume-a||0.00|stratus_snapshot',
        '  volume-a|owi-a-s---|1073741824||||',
        '  volume-t2|Vwi-a-tz--|2147483648|_snapshot-t|volumes-pool|0.00|',
        '  volumes-pool|twi-aotz--|2134900736|||12.50|a,b',
      ].join('\n');
      const lvs = parseLvs(out);
      expect(lvs).to.have.length(4);
      expect(lvs[0]).to.deep.equal({
        name: '_snapshot-a',
        attr: 'swi-a-s---',
        sizeBytes: 1073741824,
        origin: 'volume-a',
        pool: '',
        dataPercent: 0,
        tags: ['stratus_snapshot'],
      });
      expect(lvs[1]?.dataPercent).to.equal(null);
      expect(lvs[1]?.tags).to.deep.equal([]);
      expect(lvs[2]?.pool).to.equal('volumes-pool');
      expect(lvs[3]?.dataPercent).to.equal(12.5);
      expect(lvs[3]?.tags).to.deep.equal(['a', 'b']);
    });

    it('refuses a data_percent with a locale comma', () => {
      const error = parseError(() => parseLvs('  pool|twi-aotz--|2134900736|||12,50|'));
      expect(error.message).to.include('data_percent');
    });

    it('refuses an attribute string that is not 10 characters', () => {
      parseError(() => parseLvs('  lv|-wi-a|1||||'));
    });
  });

  describe('parseTgtTargets', () => {
    it('reads tid, IQN, LUNs, backing stores, accounts and ACLs (tgt 1.0.85 layout)', () => {
      const out = `Target 1: iqn.2010-10.org.openstack:volume-t2
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            Backing store path: None
        LUN: 1
            Type: disk
            Size: 2147 MB, Block size: 512
            Backing store type: rdwr
            Backing store path: /dev/volumes/volume-t2
            Backing store flags: 
    Account information:
        abcuser
    ACL information:
        ALL
Target 3: iqn.2010-10.org.openstack:volume-x
    System information:
    LUN information:
        LUN: 0
    Account information:
    ACL information:
`;
      expect(parseTgtTargets(out)).to.deep.equal([
        {
          tid: 1,
          iqn: 'iqn.2010-10.org.openstack:volume-t2',
          luns: [0, 1],
          backingStores: ['/dev/volumes/volume-t2'],
          accounts: ['abcuser'],
          acls: ['ALL'],
        },
        {
          tid: 3,
          iqn: 'iqn.2010-10.org.openstack:volume-x',
          luns: [0],
          backingStores: [],
          accounts: [],
          acls: [],
        },
      ]);
    });

    it('reads no targets from empty output', () => {
      expect(parseTgtTargets('')).to.deep.equal([]);
    });
  });
});
