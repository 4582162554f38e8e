import { expect } from 'chai';
import { CATALOGUE } from '../../../src/transforms/index.js';
import { column, one, SECRET, type Rule } from './helpers.js';

interface Case {
  rule: Rule;
  /** Inputs (text column) the checks run on. */
  inputs: string[];
  check(output: string, input: string): void;
  /** Transforms whose output does not depend on TRANSFORM_SECRET. */
  unkeyed?: true;
  /** Parameter variations: rule, input, expectation. */
  params?: [Rule, string, (output: string) => void][];
}

const EMAILS = ['john.smith@gmail.com', 'jane@corp.example', 'x@y.z', 'alice.o.brien@mail.co.uk'];
const WORDS = ['alpha', 'beta', 'gamma', 'delta'];
const oneOfList = (list: string[]) => (out: string) => expect(list).to.include(out);

function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

function isDate(text: string, minYear = 0, maxYear = 9999): boolean {
  const m = text.match(/^(\d{4})-(\d{2})-(\d{2})$/);
  if (!m) return false;
  const d = new Date(`${text}T00:00:00Z`);
  return (
    !Number.isNaN(d.getTime()) && d.toISOString().startsWith(text) && +m[1]! >= minYear && +m[1]! <= maxYear
  );
}

const daysBetween = (a: string, b: string) =>
  Math.round(
    (Date.parse(`${a.slice(0, 10)}T00:00:00Z`) - Date.parse(`${b.slice(0, 10)}T00:00:00Z`)) / 86400000,
  );

const CASES: Record<string, Case> = {
  FakeName: {
    rule: 'FakeName',
    inputs: ['John Smith', 'Ann'],
    check: (o) => expect(o).to.match(/^\S+ \S+$/),
  },
  FakeFirstName: {
    rule: 'FakeFirstName',
    inputs: ['John'],
    check: (o) => expect(o).to.match(/^[A-Z][A-Za-z' -]+$/),
  },
  FakeLastName: {
    rule: 'FakeLastName',
    inputs: ['Smith'],
    check: (o) => expect(o).to.match(/^[A-Z][A-Za-z' -]+$/),
  },
  FakeEmail: {
    rule: 'FakeEmail',
    inputs: EMAILS,
    check: (o) => expect(o).to.match(/^[a-z]+\.[a-z]+\.[0-9a-z]{10}@example\.(com|net|org)$/),
    params: [
      [{ type: 'FakeEmail', domain: 'acme.test' }, 'a@b.c', (o) => expect(o).to.match(/@acme\.test$/)],
    ],
  },
  FakePhone: {
    rule: 'FakePhone',
    inputs: ['(555) 123-4567', '555.123.4567', 'call me'],
    check: (o, i) => {
      if (i === '(555) 123-4567') expect(o).to.match(/^\(\d{3}\) \d{3}-\d{4}$/);
      else if (i === '555.123.4567') expect(o).to.match(/^\d{3}\.\d{3}\.\d{4}$/);
      else
        expect(o)
          .to.match(/^[\d() .-]+$/)
          .and.not.equal(i);
    },
    params: [['FakePhone', '+44 20 7946 0958', (o) => expect(o).to.match(/^\+44 \d{2} \d{4} \d{4}$/)]],
  },
  FakeSSN: {
    rule: 'FakeSSN',
    inputs: ['123-45-6789', '123456789', 'n/a'],
    check: (o, i) => {
      if (i === '123456789') expect(o).to.match(/^\d{9}$/);
      else expect(o).to.match(/^\d{3}-\d{2}-\d{4}$/);
      if (i === 'n/a') expect(o).to.not.match(/^(000|666|9)/);
      expect(o).to.not.equal(i);
    },
  },
  FakeDateOfBirth: {
    rule: 'FakeDateOfBirth',
    inputs: ['1980-05-05', '2001-12-31'],
    check: (o) => expect(isDate(o, 1940, 2005), o).to.equal(true),
    params: [
      [
        { type: 'FakeDateOfBirth', min_year: 1990, max_year: 1990 },
        '1980-01-01',
        (o) => expect(o).to.match(/^1990-/),
      ],
    ],
  },
  FakeUsername: {
    rule: 'FakeUsername',
    inputs: ['jsmith', 'admin'],
    check: (o) => expect(o).to.match(/^[a-z]+_[a-z]+_[0-9a-z]{10}$/),
  },
  FakePassword: {
    rule: 'FakePassword',
    inputs: ['hunter2'],
    check: (o) => expect(o).to.have.length(16),
    params: [[{ type: 'FakePassword', length: 40 }, 'x', (o) => expect(o).to.have.length(40)]],
  },
  FakeStreetAddress: {
    rule: 'FakeStreetAddress',
    inputs: ['1 Main St', '22 Elm Road'],
    check: (o) => expect(o).to.match(/^[1-9]\d{2,4} \S.+$/),
  },
  FakeStreet: { rule: 'FakeStreet', inputs: ['Main St'], check: (o) => expect(o).to.match(/^\S+( \S+)+$/) },
  FakeCity: {
    rule: 'FakeCity',
    inputs: ['Springfield'],
    check: (o) => expect(o).to.be.a('string').and.not.equal(''),
  },
  FakeState: {
    rule: 'FakeState',
    inputs: ['Ohio'],
    check: (o) => expect(o).to.match(/^[A-Z][a-z]+( [A-Z][a-z]+)*$/),
  },
  FakeStateAbbr: { rule: 'FakeStateAbbr', inputs: ['OH'], check: (o) => expect(o).to.match(/^[A-Z]{2}$/) },
  FakeZip: {
    rule: 'FakeZip',
    inputs: ['12345', '12345-6789', 'unknown'],
    check: (o, i) => expect(o).to.match(i === '12345-6789' ? /^\d{5}-\d{4}$/ : /^\d{5}$/),
  },
  FakeCountry: { rule: 'FakeCountry', inputs: ['France'], check: (o) => expect(o).to.not.equal('') },
  FakeLatitude: {
    rule: 'FakeLatitude',
    inputs: ['48.8566', '0'],
    check: (o) => {
      expect(o).to.match(/^-?\d{1,2}\.\d{6}$/);
      expect(Math.abs(Number(o))).to.be.at.most(90);
    },
  },
  FakeLongitude: {
    rule: 'FakeLongitude',
    inputs: ['2.3522'],
    check: (o) => {
      expect(o).to.match(/^-?\d{1,3}\.\d{6}$/);
      expect(Math.abs(Number(o))).to.be.at.most(180);
    },
  },
  FakeCompany: { rule: 'FakeCompany', inputs: ['Acme Inc'], check: (o) => expect(o).to.match(/^[A-Z]/) },
  FakeJobTitle: {
    rule: 'FakeJobTitle',
    inputs: ['CEO'],
    check: (o) => expect(o.split(' ')).to.have.length.of.at.least(3),
  },
  FakeIndustry: { rule: 'FakeIndustry', inputs: ['Mining'], check: (o) => expect(o).to.match(/^[A-Z]/) },
  FakeProduct: { rule: 'FakeProduct', inputs: ['Widget'], check: (o) => expect(o).to.match(/^[A-Z][a-z]+$/) },
  FakeProductName: {
    rule: 'FakeProductName',
    inputs: ['Super Widget'],
    check: (o) => expect(o.split(' ')).to.have.length.of.at.least(3),
  },
  FakeProductDescription: {
    rule: 'FakeProductDescription',
    inputs: ['A widget.'],
    check: (o) => expect(o).to.have.length.above(20).and.not.include('{{'),
  },
  FakeParagraph: {
    rule: 'FakeParagraph',
    inputs: ['Some text.'],
    check: (o) => expect(o.match(/\./g)?.length).to.be.within(3, 6),
    params: [[{ type: 'FakeParagraph', sentences: 2 }, 'x', (o) => expect(o.match(/\./g)).to.have.length(2)]],
  },
  FakeSentence: {
    rule: 'FakeSentence',
    inputs: ['Hello there.'],
    check: (o) => expect(o).to.match(/^[A-Z][a-z]*( [a-z]+){5,11}\.$/),
    params: [
      [{ type: 'FakeSentence', words: 3 }, 'x', (o) => expect(o).to.match(/^[A-Z][a-z]* [a-z]+ [a-z]+\.$/)],
    ],
  },
  FakeWord: { rule: 'FakeWord', inputs: WORDS, check: (o) => expect(o).to.match(/^[a-z]+$/) },
  FakeWords: {
    rule: 'FakeWords',
    inputs: WORDS,
    check: (o) => expect(o).to.match(/^[a-z]+ [a-z]+ [a-z]+$/),
    params: [[{ type: 'FakeWords', count: 5 }, 'x', (o) => expect(o.split(' ')).to.have.length(5)]],
  },
  FakeCharacter: { rule: 'FakeCharacter', inputs: WORDS, check: (o) => expect(o).to.match(/^[a-z]$/) },
  FakeCharacters: {
    rule: 'FakeCharacters',
    inputs: WORDS,
    check: (o) => expect(o).to.match(/^[a-z0-9]{10}$/),
    params: [[{ type: 'FakeCharacters', length: 3 }, 'x', (o) => expect(o).to.match(/^[a-z0-9]{3}$/)]],
  },
  FakeDigits: {
    rule: 'FakeDigits',
    inputs: ['0042', '123456789012', 'abc'],
    check: (o, i) => expect(o).to.match(i === 'abc' ? /^\d{10}$/ : new RegExp(`^\\d{${i.length}}$`)),
    params: [[{ type: 'FakeDigits', length: 6 }, 'abc', (o) => expect(o).to.match(/^\d{6}$/)]],
  },
  FakeCreditCardType: {
    rule: 'FakeCreditCardType',
    inputs: ['Visa', 'Amex'],
    check: oneOfList(['Visa', 'Mastercard', 'American Express', 'Discover', 'JCB', 'Diners Club']),
  },
  FakeCreditCardNum: {
    rule: 'FakeCreditCardNum',
    inputs: ['4111 1111 1111 1111', '5500-0000-0000-0004', 'none'],
    check: (o, i) => {
      expect(luhnValid(o.replace(/\D/g, '')), o).to.equal(true);
      if (i !== 'none') {
        expect(o.replace(/\d/g, '#')).to.equal(i.replace(/\d/g, '#'));
        expect(o[0]).to.equal(i[0]);
        expect(o).to.not.equal(i);
      }
    },
  },
  FakeCurrency: {
    rule: 'FakeCurrency',
    inputs: ['USD', 'EUR'],
    check: (o) => expect(o).to.match(/^[A-Z]{3}$/),
    params: [[{ type: 'FakeCurrency', format: 'name' }, 'USD', (o) => expect(o).to.match(/[a-z]/)]],
  },
  FakeMonth: {
    rule: 'FakeMonth',
    inputs: ['May'],
    check: oneOfList([
      'January',
      'February',
      'March',
      'April',
      'May',
      'June',
      'July',
      'August',
      'September',
      'October',
      'November',
      'December',
    ]),
  },
  FakeMonthNum: { rule: 'FakeMonthNum', inputs: ['5'], check: (o) => expect(Number(o)).to.be.within(1, 12) },
  FakeWeekDay: {
    rule: 'FakeWeekDay',
    inputs: ['Monday'],
    check: oneOfList(['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']),
  },
  FakeYear: {
    rule: 'FakeYear',
    inputs: ['1999'],
    check: (o) => expect(Number(o)).to.be.within(1950, 2025),
    params: [
      [{ type: 'FakeYear', min: 2000, max: 2001 }, '1999', (o) => expect(['2000', '2001']).to.include(o)],
    ],
  },
  FakeGender: { rule: 'FakeGender', inputs: ['F', 'M'], check: oneOfList(['Female', 'Male']) },
  FakeTitle: {
    rule: 'FakeTitle',
    inputs: ['Mr.'],
    check: (o) => expect(o).to.match(/^(Mr|Mrs|Ms|Miss|Dr)\.?$/),
  },
  FakeDomainName: {
    rule: 'FakeDomainName',
    inputs: ['acme.com'],
    check: (o) => expect(o).to.match(/^[a-z]+-[a-z]+\.[a-z]+$/),
  },
  Bool: { rule: 'Bool', inputs: ['true', 'false', 'yes'], check: oneOfList(['true', 'false']) },
  Regex: {
    rule: { type: 'Regex', pattern: '(\\d{3})-(\\d{2})-(\\d{4})', replacement: 'XXX-XX-$3' },
    inputs: ['123-45-6789'],
    check: (o) => expect(o).to.equal('XXX-XX-6789'),
    unkeyed: true,
    params: [
      [
        { type: 'Regex', pattern: '(\\d+)', replacement: '<${1}0>' },
        'a1b22',
        (o) => expect(o).to.equal('a<10>b<220>'),
      ],
      [
        { type: 'Regex', pattern: '(?P<user>[^@]+)@', replacement: '${user}+x@' },
        'bo@x.y',
        (o) => expect(o).to.equal('bo+x@x.y'),
      ],
      [
        { type: 'Regex', pattern: '(?i)SECRET', replacement: '$$' },
        'a secret',
        (o) => expect(o).to.equal('a $'),
      ],
      [{ type: 'Regex', pattern: '(a)', replacement: '[$2]' }, 'cat', (o) => expect(o).to.equal('c[]t')],
    ],
  },
  Template: {
    rule: { type: 'Template', template: 'user-{{.c | len}}' },
    inputs: ['abcd'],
    check: (o) => expect(o).to.equal('user-4'),
    unkeyed: true,
  },
  PasswordBcrypt: {
    rule: 'PasswordBcrypt',
    inputs: ['$2b$10$x'],
    check: (o) => expect(o).to.match(/^\$2b\$04\$/),
  },
  PasswordScrypt: {
    rule: 'PasswordScrypt',
    inputs: ['x'],
    check: (o) => expect(o).to.match(/^\$scrypt\$ln=10,r=8,p=1\$/),
  },
  PasswordPBKDF2: {
    rule: 'PasswordPBKDF2',
    inputs: ['x'],
    check: (o) => expect(o).to.match(/^\$pbkdf2-sha256\$1000\$/),
  },
  PasswordArgon2id: {
    rule: 'PasswordArgon2id',
    inputs: ['x'],
    check: (o) => expect(o).to.match(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/),
  },
  Keep: { rule: 'Keep', inputs: ['as is'], check: (o, i) => expect(o).to.equal(i), unkeyed: true },
  Null: { rule: 'Null', inputs: ['gone'], check: () => expect.fail('Null gives NULL'), unkeyed: true },
  Constant: {
    rule: { type: 'Constant', value: 'REDACTED' },
    inputs: ['anything'],
    check: (o) => expect(o).to.equal('REDACTED'),
    unkeyed: true,
    params: [[{ type: 'Constant', value: 1.5 }, 'x', (o) => expect(o).to.equal('1.5')]],
  },
  Hash: {
    rule: 'Hash',
    inputs: WORDS,
    check: (o) => expect(o).to.match(/^[0-9a-f]{32}$/),
    params: [[{ type: 'Hash', length: 12 }, 'x', (o) => expect(o).to.match(/^[0-9a-f]{12}$/)]],
  },
  Mask: {
    rule: 'Mask',
    inputs: ['4111111111111111'],
    check: (o) => expect(o).to.equal('************1111'),
    unkeyed: true,
    params: [
      [
        { type: 'Mask', keep_first: 1, keep_last: 0, keep: '@.', char: '#' },
        'bob@x.org',
        (o) => expect(o).to.equal('b##@#.###'),
      ],
    ],
  },
  DateShift: {
    rule: 'DateShift',
    inputs: ['2024-01-31', '1999-12-31 23:59:59+01', 'infinity'],
    check: (o, i) => {
      if (i === 'infinity') return expect(o).to.equal('infinity');
      expect(Math.abs(daysBetween(o, i))).to.be.within(1, 30);
      expect(o.slice(10)).to.equal(i.slice(10));
    },
    params: [
      [
        { type: 'DateShift', min_days: 100, max_days: 100 },
        '2024-01-01',
        (o) => expect(['2024-04-10', '2023-09-23']).to.include(o),
      ],
    ],
  },
  Noise: {
    rule: 'Noise',
    inputs: ['100', '12.50', 'NaN'],
    check: (o, i) => {
      if (i === 'NaN') return expect(o).to.equal('NaN');
      expect(o.split('.')[1]?.length ?? 0).to.equal(i.split('.')[1]?.length ?? 0);
      expect(Number(o)).to.be.within(Number(i) * 0.9 - 0.01, Number(i) * 1.1 + 0.01);
    },
    params: [[{ type: 'Noise', amount: 5 }, '1000', (o) => expect(Number(o)).to.be.within(995, 1005)]],
  },
  Uuid: {
    rule: 'Uuid',
    inputs: WORDS,
    check: (o) => expect(o).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
  },
  Json: {
    rule: { type: 'Json', paths: { '$.email': 'FakeEmail' } },
    inputs: ['{"email": "a@b.c", "n": 1}'],
    check: (o) =>
      expect(o).to.match(/^\{"email": "[a-z]+\.[a-z]+\.[0-9a-z]{10}@example\.(com|net|org)", "n": 1\}$/),
  },
};

describe('transform catalogue', () => {
  it('has a test case for every transform type', () => {
    expect(Object.keys(CASES).sort()).to.deep.equal(Object.keys(CATALOGUE).sort());
  });

  for (const [type, c] of Object.entries(CASES)) {
    describe(type, () => {
      it('gives the documented form', () => {
        const run = column(c.rule);
        for (const input of c.inputs) {
          const output = run(input);
          if (type === 'Null') expect(output).to.equal(null);
          else c.check(output as string, input);
        }
      });

      it('is deterministic: the same value gives the same output in a new transformer', () => {
        for (const input of c.inputs) expect(one(c.rule, input)).to.equal(one(c.rule, input));
      });

      it('keeps NULL as NULL', () => {
        expect(one(c.rule, null)).to.equal(null);
      });

      if (type !== 'Null' && type !== 'Keep' && !c.unkeyed) {
        it('depends on TRANSFORM_SECRET', () => {
          const inputs = [...c.inputs, ...Array.from({ length: 40 }, (_, i) => `${c.inputs[0]}${i}`)];
          const a = column(c.rule, 'text', SECRET);
          const b = column(c.rule, 'text', 'another-secret');
          expect(inputs.some((input) => a(input) !== b(input))).to.equal(true);
        });
      }

      if (c.unkeyed) {
        it('does not depend on TRANSFORM_SECRET', () => {
          for (const input of c.inputs)
            expect(one(c.rule, input, 'text', 'other')).to.equal(one(c.rule, input));
        });
      }

      for (const [rule, input, expectation] of c.params ?? []) {
        it(`honours ${JSON.stringify(rule)}`, () => expectation(one(rule, input) as string));
      }
    });
  }
});

/** Column types, a value of each as PostgreSQL sends it, and what a valid output looks like. */
const COLUMN_TYPES: [string, string, (o: string) => boolean][] = [
  ['character varying(5)', 'abcde', (o) => Array.from(o).length <= 5],
  ['character(3)', 'abc', (o) => Array.from(o).length <= 3],
  ['smallint', '12', (o) => /^-?\d+$/.test(o) && Math.abs(Number(o)) <= 32767],
  ['integer', '12345', (o) => /^-?\d+$/.test(o) && Math.abs(Number(o)) <= 2147483647],
  ['bigint', '1234567890123', (o) => /^-?\d+$/.test(o) && BigInt(o) <= 9223372036854775807n],
  ['numeric(6,2)', '1234.50', (o) => /^-?\d{1,4}\.\d{2}$/.test(o)],
  ['double precision', '1.5', (o) => Number.isFinite(Number(o))],
  ['boolean', 't', (o) => o === 't' || o === 'f'],
  ['date', '2001-02-03', (o) => isDate(o)],
  [
    'timestamp with time zone',
    '2001-02-03 04:05:06+00',
    (o) => /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/.test(o),
  ],
  ['time without time zone', '04:05:06', (o) => /^\d{2}:\d{2}(:\d{2})?/.test(o)],
  [
    'uuid',
    '0b4c8d8e-2a3f-4f5e-9a8b-7c6d5e4f3a2b',
    (o) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(o),
  ],
  ['jsonb', '"a value"', (o) => JSON.parse(o) !== undefined],
  ['bytea', '\\x6869', (o) => /^\\x(?:[0-9a-f]{2})*$/.test(o)],
];

const GENERATED = Object.keys(CATALOGUE).filter(
  (t) => t.startsWith('Fake') || ['Bool', 'Hash', 'Uuid', 'DateShift', 'Noise'].includes(t),
);

describe('type fitting', () => {
  for (const type of GENERATED) {
    it(`${type} gives a valid value for every column type`, () => {
      for (const [typeName, input, valid] of COLUMN_TYPES) {
        const output = one(type, input, typeName);
        expect(valid(output as string), `${type} on ${typeName}: ${output}`).to.equal(true);
        expect(one(type, input, typeName)).to.equal(output);
      }
    });
  }

  it('transforms array elements one by one and keeps NULL elements', () => {
    const output = one('FakeEmail', '{a@b.c,NULL,"x y@z.w"}', 'text[]') as string;
    const elements = output.slice(1, -1).split(',');
    expect(elements).to.have.length(3);
    expect(elements[1]).to.equal('NULL');
    expect(elements[0]).to.equal(one('FakeEmail', 'a@b.c'));
    expect(elements[2]).to.equal(one('FakeEmail', 'x y@z.w'));
  });

  it('keeps FakeEmail unique-looking and valid in a short varchar', () => {
    const output = one('FakeEmail', 'someone@example.org', 'character varying(24)') as string;
    expect(output.length).to.be.at.most(24);
    expect(output).to.match(/^[a-z.0-9]+@example\.(com|net|org)$/);
  });

  it('gives boolean columns t/f and number columns 1/0 for Bool', () => {
    expect(['t', 'f']).to.include(one('Bool', 't', 'boolean'));
    expect(['0', '1']).to.include(one('Bool', '1', 'smallint'));
  });

  it('gives a timestamp a time when the fake is a date', () => {
    expect(one('FakeDateOfBirth', '2000-01-01 10:00:00', 'timestamp without time zone')).to.match(
      /^\d{4}-\d{2}-\d{2} 00:00:00$/,
    );
    expect(one('FakeDateOfBirth', '2000-01-01 10:00:00+02', 'timestamp(3) with time zone')).to.match(
      /^\d{4}-\d{2}-\d{2} 00:00:00\+00$/,
    );
  });

  it('keeps digits-only numbers for phone and SSN in integer columns', () => {
    expect(one('FakePhone', '5551234567', 'bigint')).to.match(/^\d{7,10}$/);
    expect(one('FakeSSN', '123456789', 'integer')).to.match(/^\d{1,9}$/);
  });
});
