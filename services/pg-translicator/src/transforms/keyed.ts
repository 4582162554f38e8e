import * as crypto from 'node:crypto';
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';

/**
 * Used when TRANSFORM_SECRET is not set. Fakes made with it are reproducible by anyone, so a guess of an original
 * value can be tested against the copy: fine for demos, not for production data.
 */
export const DEVELOPMENT_KEY = 'kasho-development-transform-key';

/**
 * The only source of randomness of every transform: HMAC-SHA256(secret, identity NUL value). The identity is the
 * transform type, so a value gets the same fake in every table and column, on every path, after every restart.
 */
export class Keyer {
  private readonly key: KeyObject;

  constructor(secret: string) {
    this.key = createSecretKey(Buffer.from(secret === '' ? DEVELOPMENT_KEY : secret, 'utf8'));
  }

  digest(identity: string, value: string): Buffer {
    return createHmac('sha256', this.key).update(`${identity}\0${value}`).digest();
  }

  /** A key derived for one purpose, as 64 hex characters: exactly one SHA-256 block. */
  subkey(purpose: string): string {
    return createHmac('sha256', this.key).update(`subkey\0${purpose}`).digest('hex');
  }
}

/**
 * SHA-256(subkey || message) with a one-block secret subkey: a cheaper pseudo-random function than HMAC for the
 * many short calls of the digit permutation, whose outputs are never shown. crypto.hash (Node 20.12+) computes
 * the same digest as createHash, only faster.
 */
export const prefixHash: (subkey: string, message: string) => Buffer =
  typeof crypto.hash === 'function'
    ? (subkey, message) => crypto.hash('sha256', subkey + message, 'buffer')
    : (subkey, message) =>
        createHash('sha256')
          .update(subkey + message)
          .digest();

const TWO_32 = 4294967296;

/**
 * Draws from one digest: the first eight 32-bit words are the digest itself, later draws come from sfc32 seeded
 * with it, so long outputs (paragraphs) stay a pure function of the digest.
 */
export class Rand {
  private index = 0;
  private bytes: Buffer | undefined;
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  /** The digest is computed on the first draw: transforms that keep a value's shape may never draw. */
  constructor(private readonly digest: () => Buffer) {}

  u32(): number {
    const bytes = (this.bytes ??= this.digest());
    if (this.index < 8) return bytes.readUInt32BE(4 * this.index++);
    if (this.index === 8) {
      this.index++;
      this.a = bytes.readUInt32BE(0) ^ bytes.readUInt32BE(16);
      this.b = bytes.readUInt32BE(4) ^ bytes.readUInt32BE(20);
      this.c = bytes.readUInt32BE(8) ^ bytes.readUInt32BE(24);
      this.d = 1;
      for (let i = 0; i < 12; i++) this.sfc32();
    }
    return this.sfc32();
  }

  private sfc32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n), n at most 2^32. */
  int(n: number): number {
    return Math.floor((this.u32() / TWO_32) * n);
  }

  /** An integer in [min, max], both included. */
  between(min: number, max: number): number {
    const span = max - min + 1;
    if (span <= TWO_32) return min + this.int(span);
    return min + Math.floor(this.float() * span);
  }

  /** A float in [0, 1) with 53 random bits. */
  float(): number {
    return ((this.u32() >>> 5) * 67108864 + (this.u32() >>> 6)) / 9007199254740992;
  }

  /** A bigint in [0, n). */
  bigint(n: bigint): bigint {
    let value = 0n;
    let range = 1n;
    while (range < n << 32n) {
      value = (value << 32n) | BigInt(this.u32());
      range <<= 32n;
    }
    return value % n;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  /** `length` characters of an alphabet, one draw each. */
  chars(alphabet: string, length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) out += alphabet[this.int(alphabet.length)];
    return out;
  }

  /** `length` characters of a 32-symbol alphabet: six characters (30 bits) per 32-bit draw. */
  base32(alphabet32: string, length: number): string {
    let out = '';
    let word = 0;
    for (let i = 0; i < length; i++) {
      if (i % 6 === 0) word = this.u32();
      out += alphabet32[word & 31];
      word >>>= 5;
    }
    return out;
  }

  digits(length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) out += String(this.int(10));
    return out;
  }
}
