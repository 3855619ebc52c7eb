import { expect } from 'chai';
import { anchored, type CommandFilter, filterIssues, matchFilters } from '../../src/exec/filters.js';

describe('exec/filters', () => {
  describe('anchored()', () => {
    it('requires the whole argument to match', () => {
      const re = anchored(/lv-\d+/);
      expect(re.test('lv-12')).to.equal(true);
      expect(re.test('xlv-12')).to.equal(false);
      expect(re.test('lv-12;rm -rf /')).to.equal(false);
    });

    it('anchors every branch of an alternation', () => {
      const re = anchored(/-f|--force/);
      expect(re.test('-f')).to.equal(true);
      expect(re.test('--force')).to.equal(true);
      expect(re.test('-fx')).to.equal(false);
      expect(re.test('x--force')).to.equal(false);
    });

    it('drops the multiline flag so a line break cannot smuggle a second line', () => {
      expect(anchored(/ok/m).test('ok\nrm -rf /')).to.equal(false);
    });

    it('drops the global flag so repeated tests agree', () => {
      const re = anchored(/a+/g);
      expect([re.test('aa'), re.test('aa'), re.test('aa')]).to.deep.equal([true, true, true]);
    });

    it('keeps the case-insensitive flag', () => {
      expect(anchored(/abc/i).test('ABC')).to.equal(true);
    });
  });

  describe('matchFilters()', () => {
    const filters: CommandFilter[] = [
      { command: 'lvcreate', asRoot: true, args: [/-L/, /\d+[GM]/, /--name/, /[a-z][a-z0-9-]*/] },
      { command: '/usr/sbin/lvremove', args: [/-f/, /[a-z]+\/[a-z0-9-]+/] },
      { command: 'dd' },
    ];

    it('allows a command whose every argument matches a pattern and returns its filter', () => {
      const m = matchFilters(filters, ['lvcreate', '-L', '1G', '--name', 'vol-1', 'stratus']);
      expect(m).to.deep.equal({ allowed: true, filter: filters[0] });
    });

    it('allows any arguments when the filter lists none', () => {
      expect(matchFilters(filters, ['dd', 'if=/dev/zero', 'of=/dev/x', 'bs=1M']).allowed).to.equal(true);
    });

    for (const bad of ['--force', ';rm -rf /', '../x', '']) {
      it(`refuses the argument ${JSON.stringify(bad)} and names its position`, () => {
        const m = matchFilters(filters, ['lvcreate', '-L', '1G', bad]);
        expect(m.allowed).to.equal(false);
        if (!m.allowed) expect(m.reason).to.contain('argument 3').and.contain(JSON.stringify(bad));
      });
    }

    it('does not let a bare-name filter allow a path with that base name', () => {
      for (const cmd of ['/tmp/evil/lvcreate', './lvcreate', '/usr/sbin/lvcreate']) {
        const m = matchFilters(filters, [cmd, '-L', '1G']);
        expect(m.allowed, cmd).to.equal(false);
      }
    });

    it('does not let an absolute-path filter allow the bare name', () => {
      expect(matchFilters(filters, ['lvremove', '-f', 'vg/lv']).allowed).to.equal(false);
      expect(matchFilters(filters, ['/usr/sbin/lvremove', '-f', 'vg/lv']).allowed).to.equal(true);
    });

    it('tries every filter for the same command', () => {
      const two: CommandFilter[] = [
        { command: 'iscsiadm', args: [/-m/, /discovery/] },
        { command: 'iscsiadm', asRoot: true, args: [/-m/, /node/, /--login/] },
      ];
      const m = matchFilters(two, ['iscsiadm', '-m', 'node', '--login']);
      expect(m.allowed && m.filter).to.equal(two[1]);
    });

    it('refuses an unknown command and an empty argv', () => {
      const m = matchFilters(filters, ['rm', '-rf', '/']);
      expect(m.allowed).to.equal(false);
      if (!m.allowed) expect(m.reason).to.contain('no command filter allows "rm"');
      expect(matchFilters(filters, []).allowed).to.equal(false);
    });

    it('quotes the display argv, not the real one, in reasons', () => {
      const m = matchFilters(filters, ['lvcreate', 'hunter2!'], ['lvcreate', '[redacted]']);
      expect(m.allowed).to.equal(false);
      if (!m.allowed) expect(m.reason).to.contain('[redacted]').and.not.contain('hunter2');
    });
  });

  describe('filterIssues()', () => {
    it('accepts bare names and absolute paths', () => {
      expect(filterIssues([{ command: 'vgs' }, { command: '/sbin/vgs', args: [/x/] }])).to.deep.equal([]);
    });

    it('flags relative paths, empty names and non-RegExp patterns', () => {
      const issues = filterIssues([
        { command: 'bin/vgs' },
        { command: '' },
        { command: 'vgs', args: ['x' as unknown as RegExp] },
      ]);
      expect(issues.map((i) => i.path)).to.deep.equal(['/0/command', '/1/command', '/2/args/0']);
    });
  });
});
