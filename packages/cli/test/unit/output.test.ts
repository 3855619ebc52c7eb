import { expect } from 'chai';
import { cell, formatAge, renderRecord, renderTable } from '../../src/output.js';

describe('output', () => {
  it('aligns table columns under upper-case headers, with - for empty cells', () => {
    const text = renderTable(
      [
        { id: 'a', name: 'data', size: 1 },
        { id: 'bbbb', name: null, size: 20 },
      ],
      [
        { header: 'id', value: (r) => r.id },
        { header: 'name', value: (r) => r.name },
        { header: 'size', value: (r) => r.size },
      ],
    );
    expect(text.split('\n')).to.deep.equal(['ID    NAME  SIZE', 'a     data  1', 'bbbb  -     20', '']);
  });

  it('prints a record as aligned field/value lines', () => {
    expect(
      renderRecord([
        ['id', 'x'],
        ['description', null],
      ]),
    ).to.equal('id           x\ndescription  -\n');
  });

  it('formats cells: dates as ISO, objects as JSON, newlines folded', () => {
    expect(cell(new Date('2026-01-02T03:04:05Z'))).to.equal('2026-01-02T03:04:05.000Z');
    expect(cell({ a: 1 })).to.equal('{"a":1}');
    expect(cell('two\nlines')).to.equal('two lines');
    expect(cell(undefined)).to.equal('-');
  });

  it('formats heartbeat ages', () => {
    expect(formatAge(4.7)).to.equal('4s');
    expect(formatAge(192)).to.equal('3m12s');
    expect(formatAge(7500)).to.equal('2h5m');
    expect(formatAge(3 * 86400 + 4 * 3600)).to.equal('3d4h');
    expect(formatAge(-3)).to.equal('0s');
  });
});
