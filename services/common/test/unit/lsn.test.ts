import { expect } from 'chai';
import { formatLsn, isLsn, parseLsn } from '@kasho/common';

describe('LSN text form', () => {
  it('parses and formats both halves', () => {
    expect(parseLsn('16/B374D848')).to.equal(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).to.equal('16/B374D848');
    expect(formatLsn(0n)).to.equal('0/0');
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).to.equal(2n ** 64n - 1n);
  });

  it('rejects what is not an LSN', () => {
    expect(isLsn('0/16B3748')).to.equal(true);
    expect(isLsn('16B3748')).to.equal(false);
    expect(() => parseLsn('x/1')).to.throw(/not an LSN/);
  });
});
