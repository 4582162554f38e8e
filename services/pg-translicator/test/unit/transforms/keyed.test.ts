import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { DEVELOPMENT_KEY, Keyer, prefixHash, Rand } from '../../../src/transforms/keyed.js';
import { one } from './helpers.js';

describe('keyed randomness', () => {
  it('derives a digest from the secret, the transform identity and the value only', () => {
    const keyer = new Keyer('k');
    expect(keyer.digest('FakeEmail', 'a@b.c')).to.deep.equal(new Keyer('k').digest('FakeEmail', 'a@b.c'));
    expect(keyer.digest('FakeEmail', 'a@b.c')).to.not.deep.equal(keyer.digest('FakeName', 'a@b.c'));
    expect(keyer.digest('FakeEmail', 'a@b.c')).to.not.deep.equal(new Keyer('K').digest('FakeEmail', 'a@b.c'));
    expect(new Keyer('').digest('x', 'y')).to.deep.equal(new Keyer(DEVELOPMENT_KEY).digest('x', 'y'));
  });

  it('computes prefixHash as plain SHA-256 of subkey and message', () => {
    const subkey = new Keyer('k').subkey('purpose');
    expect(subkey).to.match(/^[0-9a-f]{64}$/);
    expect(prefixHash(subkey, 'm')).to.deep.equal(
      createHash('sha256')
        .update(subkey + 'm')
        .digest(),
    );
  });

  it('draws the digest words first, then a stream seeded by them', () => {
    const digest = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    const rand = new Rand(() => digest);
    expect(rand.u32()).to.equal(0x00010203);
    for (let i = 1; i < 8; i++) rand.u32();
    const next = [rand.u32(), rand.u32()];
    const again = new Rand(() => digest);
    for (let i = 0; i < 8; i++) again.u32();
    expect([again.u32(), again.u32()]).to.deep.equal(next);
    const counts = [0, 0, 0, 0];
    const r = new Rand(() => digest);
    for (let i = 0; i < 4000; i++) counts[r.int(4)]! += 1;
    for (const c of counts) expect(c).to.be.within(850, 1150);
  });
});

/**
 * The fakes must not change between releases: a source value transformed before an upgrade and again after it
 * (an update, a re-bootstrap, another table) must give the same fake, or joins through transformed keys break.
 * A change here means users' copies diverge; @faker-js/faker upgrades that reorder its data do exactly that.
 */
const GOLDEN: Record<string, [string, string]> = {
  FakeName: ['ann@corp.com', 'Eloy Hettinger'],
  FakeFirstName: ['ann@corp.com', 'Jalyn'],
  FakeLastName: ['ann@corp.com', 'Schoen'],
  FakeEmail: ['ann@corp.com', 'magnolia.effertz.syrjzt1t7z@example.org'],
  FakePhone: ['(555) 123-4567', '(261) 874-2137'],
  FakeSSN: ['123-45-6789', '278-52-7574'],
  FakeDateOfBirth: ['ann@corp.com', '1958-06-30'],
  FakeUsername: ['ann@corp.com', 'yvette_crooks_13rdhm881b'],
  FakePassword: ['ann@corp.com', 'Tnp5o3cmytzz!%Yy'],
  FakeStreetAddress: ['ann@corp.com', '35987 Christiansen Loaf'],
  FakeStreet: ['ann@corp.com', 'Makenna Port'],
  FakeCity: ['ann@corp.com', 'St. Peters'],
  FakeState: ['ann@corp.com', 'West Virginia'],
  FakeStateAbbr: ['ann@corp.com', 'IL'],
  FakeZip: ['12345', '56847'],
  FakeCountry: ['ann@corp.com', 'Bangladesh'],
  FakeLatitude: ['ann@corp.com', '-78.529374'],
  FakeLongitude: ['ann@corp.com', '-12.461802'],
  FakeCompany: ['ann@corp.com', 'Berge LLC'],
  FakeJobTitle: ['ann@corp.com', 'Human Directives Officer'],
  FakeIndustry: ['ann@corp.com', 'Logistics'],
  FakeProduct: ['ann@corp.com', 'Chips'],
  FakeProductName: ['ann@corp.com', 'Bespoke Aluminum Salad'],
  FakeProductDescription: [
    'ann@corp.com',
    'Savor the rich essence in our Pants, designed for live culinary adventures',
  ],
  FakeParagraph: [
    'ann@corp.com',
    'Succurro peccatus valens praesentium quam deinde. Demonstro ventito aptus bos solitudo auctor tener appello. Aqua stipes capto tui aperte cras pel barba numquam.',
  ],
  FakeSentence: ['ann@corp.com', 'Degusto curo thema spes optio sufficio umquam.'],
  FakeWord: ['ann@corp.com', 'colligo'],
  FakeWords: ['ann@corp.com', 'adsidue corona audax'],
  FakeCharacter: ['ann@corp.com', 'h'],
  FakeCharacters: ['ann@corp.com', 'z902004uzu'],
  FakeDigits: ['0042', '6973'],
  FakeCreditCardType: ['ann@corp.com', 'Discover'],
  FakeCreditCardNum: ['4111 1111 1111 1111', '4334 1124 5921 1472'],
  FakeCurrency: ['ann@corp.com', 'MMK'],
  FakeMonth: ['ann@corp.com', 'November'],
  FakeMonthNum: ['ann@corp.com', '10'],
  FakeWeekDay: ['ann@corp.com', 'Sunday'],
  FakeYear: ['ann@corp.com', '1970'],
  FakeGender: ['ann@corp.com', 'Male'],
  FakeTitle: ['ann@corp.com', 'Dr.'],
  FakeDomainName: ['ann@corp.com', 'meager-roundabout.info'],
  Bool: ['ann@corp.com', 'false'],
  PasswordPBKDF2: [
    'ann@corp.com',
    '$pbkdf2-sha256$1000$aRXDOzy.QP5fBahWEFv4mw$3qaPeSAZK003XuCI9xMQ6r.8BqY8cvpr/LFbuz8x1aw',
  ],
  Hash: ['ann@corp.com', '95c661ec6e44c0e54c930986e070f585'],
  DateShift: ['2024-01-31', '2024-01-09'],
  Noise: ['100.00', '109.39'],
  Uuid: ['ann@corp.com', '4eca43dc-1244-4e69-b9a9-ce9ad21e5211'],
};

describe('stability across releases', () => {
  for (const [type, [input, output]] of Object.entries(GOLDEN)) {
    it(`${type} still gives the same fake`, () => {
      expect(one(type, input, 'text', 'golden-secret')).to.equal(output);
    });
  }
});
