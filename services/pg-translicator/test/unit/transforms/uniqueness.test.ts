import { expect } from 'chai';
import { permuteDigits } from '../../../src/transforms/fpe.js';
import { Keyer } from '../../../src/transforms/keyed.js';
import { column } from './helpers.js';

/** FakeEmail and FakeUsername draw ~2^70 outputs (names and a 50-bit token): 1M inputs must not collide. */
const MILLION = 1_000_000;

/** Transforms `count` distinct inputs and returns how many distinct outputs came out. */
function distinctOutputs(
  type: string,
  count: number,
  input: (i: number) => string,
  typeName = 'text',
): number {
  const run = column(type, typeName);
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) seen.add(run(input(i)) as string);
  return seen.size;
}

describe('uniqueness', function () {
  this.timeout(300000);

  it('FakeEmail: 1M distinct emails give 1M distinct fakes', () => {
    expect(distinctOutputs('FakeEmail', MILLION, (i) => `user${i}@customer-mail.com`)).to.equal(MILLION);
  });

  it('FakeUsername: 1M distinct user names give 1M distinct fakes', () => {
    expect(distinctOutputs('FakeUsername', MILLION, (i) => `user_${i}`)).to.equal(MILLION);
  });

  // Uuid (122 random bits) and Hash (128 bits by default) collide among 1M values with probability below 1e-24;
  // a smaller run checks the same code path in a fraction of the time.
  it('Uuid: 200k distinct values give 200k distinct UUIDs', () => {
    expect(distinctOutputs('Uuid', 200_000, (i) => `value-${i}`)).to.equal(200_000);
  });

  it('Hash: 200k distinct values give 200k distinct hashes', () => {
    expect(distinctOutputs('Hash', 200_000, (i) => `value-${i}`)).to.equal(200_000);
  });

  it('Hash stays unique in a bigint column', () => {
    expect(distinctOutputs('Hash', 200_000, (i) => String(i), 'bigint')).to.equal(200_000);
  });

  it('FakeSSN is a permutation: 200k distinct SSNs give 200k distinct SSNs', () => {
    const ssn = (i: number) => {
      const digits = String(100000000 + i * 4099);
      return `${digits.slice(0, 3)}-${digits.slice(3, 5)}-${digits.slice(5)}`;
    };
    expect(distinctOutputs('FakeSSN', 200_000, ssn)).to.equal(200_000);
  });

  it('FakePhone, FakeCreditCardNum and FakeDigits keep distinct inputs distinct', () => {
    expect(
      distinctOutputs(
        'FakePhone',
        100_000,
        (i) => `(555) ${String(1000000 + i).slice(1, 4)}-${String(1000000 + i).slice(3)}`,
      ),
    ).to.equal(100_000);
    expect(
      distinctOutputs('FakeCreditCardNum', 100_000, (i) => `4111${String(i).padStart(11, '0')}0`),
    ).to.equal(100_000);
    expect(distinctOutputs('FakeDigits', 100_000, (i) => String(i).padStart(8, '0'))).to.equal(100_000);
  });
});

describe('digit permutation', () => {
  const keyer = new Keyer('unit-test-secret');

  for (const length of [1, 2, 3, 4]) {
    it(`maps all ${10 ** length} strings of ${length} digits onto themselves`, () => {
      const outputs = new Set<string>();
      for (let i = 0; i < 10 ** length; i++) {
        const output = permuteDigits(keyer, 'FakeDigits', String(i).padStart(length, '0'));
        expect(output).to.match(new RegExp(`^\\d{${length}}$`));
        outputs.add(output);
      }
      expect(outputs.size).to.equal(10 ** length);
    });
  }

  it('is keyed and works past 15 digits', () => {
    const other = new Keyer('another-secret');
    const digits = '1234567890123456789';
    expect(permuteDigits(keyer, 'X', digits)).to.have.length(19);
    expect(permuteDigits(keyer, 'X', digits)).to.equal(permuteDigits(keyer, 'X', digits));
    expect(permuteDigits(keyer, 'X', digits)).to.not.equal(permuteDigits(other, 'X', digits));
    expect(permuteDigits(keyer, 'X', '123456789')).to.not.equal(permuteDigits(keyer, 'Y', '123456789'));
  });
});
