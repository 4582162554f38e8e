import { prefixHash, type Keyer } from './keyed.js';

const ROUNDS = 6;

/**
 * A keyed permutation of the strings of `digits.length` decimal digits (FE1: a Feistel network over Z_a x Z_b with
 * a*b = 10^d). Distinct inputs of one length give distinct outputs, which is how FakeSSN, FakePhone,
 * FakeCreditCardNum and FakeDigits keep a unique column unique even though their output space is small.
 */
export function permuteDigits(keyer: Keyer, identity: string, digits: string): string {
  const d = digits.length;
  if (d === 0) return digits;
  const key = roundKey(keyer, identity);
  if (d <= 15) {
    // 10^15 < 2^53: plain numbers are exact here and much faster than bigints.
    const a = d === 1 ? 2 : 10 ** Math.floor(d / 2);
    const b = d === 1 ? 5 : 10 ** Math.ceil(d / 2);
    let x = Number(digits);
    for (let round = 0; round < ROUNDS; round++) {
      const right = x % b;
      const left = (x - right) / b;
      const f = prefixHash(key, `${d}:${round}:${right}`).readUIntBE(0, 6);
      x = a * right + ((left + f) % a);
    }
    return String(x).padStart(d, '0');
  }
  const a = 10n ** BigInt(Math.floor(d / 2));
  const b = 10n ** BigInt(Math.ceil(d / 2));
  let x = BigInt(digits);
  for (let round = 0; round < ROUNDS; round++) {
    const left = x / b;
    const right = x % b;
    const f = prefixHash(key, `${d}:${round}:${right}`).readBigUInt64BE(0);
    x = a * right + ((left + f) % a);
  }
  return x.toString().padStart(d, '0');
}

const roundKeys = new WeakMap<Keyer, Map<string, string>>();

function roundKey(keyer: Keyer, identity: string): string {
  let keys = roundKeys.get(keyer);
  if (keys === undefined) {
    keys = new Map();
    roundKeys.set(keyer, keys);
  }
  let key = keys.get(identity);
  if (key === undefined) {
    key = keyer.subkey(`${identity}/fpe`);
    keys.set(identity, key);
  }
  return key;
}
