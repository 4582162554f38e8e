import { expect } from 'chai';
import { Progress, formatBytes } from '../../src/progress.js';

describe('progress', () => {
  it('reports tables, rows, DDL, bytes and the rate, never values', () => {
    const progress = new Progress(() => undefined);
    progress.tablesTotal = 12;
    progress.tablesDone = 3;
    progress.rows = 1_234_567;
    progress.ddl = 40;
    progress.bytes = 5 * 1024 * 1024 + 512 * 1024;
    expect(progress.describe()).to.match(
      /^tables 3\/12, 1,234,567 rows, 40 DDL statements, 5\.5 MiB read, [\d,]+ rows\/s, \d+\.\ds$/,
    );
  });

  it('prints sizes in binary units', () => {
    expect(formatBytes(512)).to.equal('512 B');
    expect(formatBytes(1536)).to.equal('1.5 KiB');
    expect(formatBytes(3 * 1024 ** 3)).to.equal('3.0 GiB');
  });
});
