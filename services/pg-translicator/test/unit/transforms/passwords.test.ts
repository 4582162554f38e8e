import { pbkdf2Sync, scryptSync } from 'node:crypto';
import { expect } from 'chai';
import { argon2Verify, bcryptVerify } from 'hash-wasm';
import { NULL, one, TABLE, text, transformerFor } from './helpers.js';

function hashOf(rule: Record<string, unknown>, original = '$2b$10$original', username = 'ann'): string {
  const transformer = transformerFor({ username: 'Keep', pw: rule });
  const out = transformer.transformRow(
    TABLE,
    [
      { name: 'username', typeName: 'text' },
      { name: 'pw', typeName: 'character varying(255)' },
    ],
    [text(username), text(original)],
  )[1];
  if (out?.kind !== 'text') throw new Error('expected a hash');
  return out.text;
}

describe('password transforms', function () {
  this.timeout(60000);

  it('PasswordBcrypt gives a $2b$ hash of the cleartext that bcrypt verifies', async () => {
    const hash = hashOf({ type: 'PasswordBcrypt', cleartext: '{{.username}}-pw', cost: 5 });
    expect(hash).to.match(/^\$2b\$05\$[./A-Za-z0-9]{53}$/);
    expect(await bcryptVerify({ password: 'ann-pw', hash: hash.replace('$2b$', '$2a$') })).to.equal(true);
    expect(hashOf({ type: 'PasswordBcrypt', variant: '2a' })).to.match(/^\$2a\$04\$/);
    expect(hashOf({ type: 'PasswordBcrypt', cleartext: 'x'.repeat(100) })).to.match(/^\$2b\$04\$/);
  });

  it('PasswordArgon2id gives a PHC string argon2 verifies', async () => {
    const hash = hashOf({ type: 'PasswordArgon2id', cleartext: 'secret', time: 2, memory: 64, threads: 2 });
    expect(hash).to.match(/^\$argon2id\$v=19\$m=64,t=2,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(await argon2Verify({ password: 'secret', hash })).to.equal(true);
  });

  it('PasswordScrypt gives a PHC string of scrypt', () => {
    const hash = hashOf({ type: 'PasswordScrypt', cleartext: 'secret', n: 2048, r: 4, p: 2 });
    const m = hash.match(/^\$scrypt\$ln=11,r=4,p=2\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/);
    expect(m, hash).to.not.equal(null);
    const key = scryptSync('secret', Buffer.from(m![1]!, 'base64'), 32, { N: 2048, r: 4, p: 2 });
    expect(key.toString('base64').replace(/=+$/, '')).to.equal(m![2]);
  });

  it("PasswordPBKDF2 gives passlib's $pbkdf2-sha256$ / $pbkdf2-sha512$ strings", () => {
    const hash = hashOf({ type: 'PasswordPBKDF2', cleartext: 'secret', iterations: 2000 });
    const m = hash.match(/^\$pbkdf2-sha256\$2000\$([./A-Za-z0-9]+)\$([./A-Za-z0-9]+)$/);
    expect(m, hash).to.not.equal(null);
    const salt = Buffer.from(m![1]!.replace(/\./g, '+'), 'base64');
    const key = pbkdf2Sync('secret', salt, 2000, 32, 'sha256');
    expect(key.toString('base64').replace(/=+$/, '').replace(/\+/g, '.')).to.equal(m![2]);
    expect(hashOf({ type: 'PasswordPBKDF2', hash: 'sha512' })).to.match(/^\$pbkdf2-sha512\$1000\$/);
  });

  for (const type of ['PasswordBcrypt', 'PasswordScrypt', 'PasswordPBKDF2', 'PasswordArgon2id']) {
    it(`${type}: use_salt (default) salts per original value, deterministically; use_salt: false per cleartext`, () => {
      const salted = { type, cleartext: 'same' };
      expect(hashOf(salted, 'hash-1')).to.equal(hashOf(salted, 'hash-1'));
      expect(hashOf(salted, 'hash-1')).to.not.equal(hashOf(salted, 'hash-2'));
      const unsalted = { type, cleartext: 'same', use_salt: false };
      expect(hashOf(unsalted, 'hash-1')).to.equal(hashOf(unsalted, 'hash-2'));
      const computed = { ...unsalted, cleartext: '{{.username | replace "ann" "same"}}' };
      expect(hashOf(unsalted, 'hash-1')).to.equal(hashOf(computed, 'hash-3', 'ann'));
    });
  }

  it('keeps NULL passwords NULL', () => {
    const transformer = transformerFor({ pw: 'PasswordBcrypt' });
    expect(transformer.transformRow(TABLE, [{ name: 'pw', typeName: 'text' }], [NULL])).to.deep.equal([NULL]);
    expect(one('PasswordPBKDF2', 'x')).to.match(/^\$pbkdf2-sha256\$/);
  });
});
