import { TransformFailure } from './errors.js';
import * as fake from './fakes.js';
import type { GenContext, Generator } from './fakes.js';
import {
  BOOL,
  describeType,
  fitAuthored,
  fitGenerated,
  NUMERIC,
  randomDate,
  TEXT,
  uuidFrom,
  type ScalarType,
} from './fit.js';
import { applyPath, mapLeaves, parseJson, serializeJson, type JsonValue, type PathSegment } from './json.js';
import { Rand, type Keyer } from './keyed.js';
import * as p from './params.js';
import type { ParamSpec } from './params.js';
import {
  argon2idAlgorithm,
  bcryptAlgorithm,
  pbkdf2Algorithm,
  PasswordCache,
  SALT_BYTES,
  scryptAlgorithm,
  type PasswordAlgorithm,
} from './passwords.js';
import type { CompiledTemplate, TemplateValue } from './template.js';

/** Transforms one non-NULL scalar value (an array's elements one by one); throws TransformFailure. */
export type ValueFn = (input: string, type: ScalarType) => string | null;

/** What a configured rule does at run time. */
export type Behavior =
  | { kind: 'keep' }
  | { kind: 'null' }
  | { kind: 'value'; apply: ValueFn }
  | {
      kind: 'row';
      /** Columns read, besides the column's own value when `usesOwnValue`. */
      fields: readonly string[];
      usesOwnValue: boolean;
      evaluate(lookup: (column: string) => TemplateValue, own: string | undefined): string;
    };

export interface BuildEnv {
  keyer: Keyer;
  passwords: PasswordCache;
}

/** A parsed rule: transform type, its parameters, and for Json the rules of its paths. */
export interface RuleSpec {
  readonly type: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly paths: readonly { path: string; segments: readonly PathSegment[]; rule: RuleSpec }[];
}

export type Stage = 'value' | 'row' | 'keep' | 'null' | 'json';

interface TypeDef<P> {
  readonly stage: Stage;
  readonly params: { [K in keyof P]: ParamSpec<P[K]> };
  /** A problem involving several parameters, e.g. min above max. */
  check?(params: P): string | undefined;
  /** Columns a row-stage transform reads. */
  fields?(params: P): readonly string[];
  build(params: P, env: BuildEnv, rule: RuleSpec): Behavior;
}

export type AnyTypeDef = TypeDef<Record<string, unknown>>;

function define<P>(def: TypeDef<P>): AnyTypeDef {
  return def as unknown as AnyTypeDef;
}

/** Keyed by (type, value): the digest seeds the generator, and the output is fitted to the column's type. */
function keyed(identity: string, generate: Generator, env: BuildEnv): ValueFn {
  return (input, type) => {
    const rand = new Rand(() => env.keyer.digest(identity, input));
    const ctx: GenContext = { type, keyer: env.keyer, identity };
    return fitGenerated(generate(rand, input, ctx), type, rand);
  };
}

function authored(apply: (input: string) => string): ValueFn {
  return (input, type) => {
    const out = fitAuthored(apply(input), type);
    if (out === undefined) throw new TransformFailure(`the result is not a valid ${describeType(type)}`);
    return out;
  };
}

function fakeType(generate: Generator) {
  return define<Record<string, never>>({
    stage: 'value',
    params: {},
    build: (_params, env, rule) => ({ kind: 'value', apply: keyed(rule.type, generate, env) }),
  });
}

function fakeWith<P>(params: { [K in keyof P]: ParamSpec<P[K]> }, make: (p: P) => Generator) {
  return define<P>({
    stage: 'value',
    params,
    build: (values, env, rule) => ({ kind: 'value', apply: keyed(rule.type, make(values), env) }),
  });
}

const DATE_PREFIX = /^(\d{4})-(\d{2})-(\d{2})(.*)$/s;

function shiftDate(rand: Rand, input: string, minDays: number, maxDays: number): string {
  if (/^-?infinity$/i.test(input)) return input;
  const m = input.match(DATE_PREFIX);
  if (!m || / BC$/.test(input)) return randomDate(rand);
  const days = rand.between(minDays, maxDays) * (rand.int(2) === 0 ? -1 : 1);
  const shifted = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not read years 0-99 as 1900-1999.
  shifted.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + days);
  const text = shifted.toISOString().slice(0, 10);
  return /^\d{4}-/.test(text) ? `${text}${m[4] ?? ''}` : randomDate(rand);
}

function addNoise(rand: Rand, input: string, ratio: number | undefined, amount: number | undefined): string {
  const m = input.trim().match(/^[+-]?(\d*)(?:\.(\d*))?$/);
  if (!m || (m[1] === '' && (m[2] ?? '') === '')) {
    return /^(?:nan|[+-]?infinity)$/i.test(input) ? input : (rand.float() * 1000).toFixed(2);
  }
  const value = Number(input);
  const spread = amount ?? Math.abs(value) * (ratio ?? 0.1);
  return (value + (rand.float() * 2 - 1) * spread).toFixed((m[2] ?? '').length);
}

function mask(input: string, keepFirst: number, keepLast: number, maskChar: string, keep: string): string {
  const chars = Array.from(input);
  return chars
    .map((c, i) => (i < keepFirst || i >= chars.length - keepLast || keep.includes(c) ? c : maskChar))
    .join('');
}

/** Go's regexp.Expand: `$1`, `${1}`, `$name`, `${name}`, `$$`. */
function goReplacement(replacement: string): (match: string, ...args: unknown[]) => string {
  const parts: (string | { ref: string })[] = [];
  const re = /\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g;
  let last = 0;
  for (let m = re.exec(replacement); m; m = re.exec(replacement)) {
    parts.push(replacement.slice(last, m.index));
    parts.push(m[0] === '$$' ? '$' : { ref: m[1] ?? m[2] ?? '' });
    last = m.index + m[0].length;
  }
  parts.push(replacement.slice(last));
  return (...args: unknown[]) => {
    // replace() passes the match, the groups, the offset (the first number), the input and maybe named groups.
    const offsetAt = args.findIndex((a, i) => i > 0 && typeof a === 'number');
    const captures = args.slice(0, offsetAt) as (string | undefined)[];
    const named = args[offsetAt + 2] as Record<string, string | undefined> | undefined;
    let out = '';
    for (const part of parts) {
      if (typeof part === 'string') out += part;
      else if (/^\d+$/.test(part.ref)) out += captures[Number(part.ref)] ?? '';
      else out += named?.[part.ref] ?? '';
    }
    return out;
  };
}

function jsonLeaf(apply: ValueFn, leaf: JsonValue): JsonValue {
  const [input, type]: [string, ScalarType] =
    leaf.t === 'str'
      ? [leaf.v, TEXT]
      : leaf.t === 'num'
        ? [leaf.raw, NUMERIC]
        : [leaf.t === 'bool' && leaf.v ? 'true' : 'false', BOOL];
  const out = apply(input, type);
  if (out === null) return { t: 'null' };
  if (leaf.t === 'num' && /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(out))
    return { t: 'num', raw: out };
  if (leaf.t === 'bool' && (out === 't' || out === 'f')) return { t: 'bool', v: out === 't' };
  return { t: 'str', v: out };
}

interface PasswordParams {
  cleartext: CompiledTemplate;
  use_salt: boolean;
}

const passwordParams = {
  cleartext: p.template('password'),
  use_salt: p.bool(true),
};

function passwordBehavior(
  rule: RuleSpec,
  values: PasswordParams,
  algorithm: PasswordAlgorithm,
  env: BuildEnv,
): Behavior {
  return {
    kind: 'row',
    fields: values.cleartext.fields,
    usesOwnValue: values.use_salt,
    evaluate(lookup, own) {
      const cleartext = values.cleartext.render(lookup);
      const salt = env.keyer
        .digest(`${rule.type}/salt`, values.use_salt ? (own ?? '') : cleartext)
        .subarray(0, SALT_BYTES);
      return env.passwords.get(`${algorithm.id}\0${salt.toString('hex')}\0${cleartext}`, () =>
        algorithm.hash(cleartext, salt),
      );
    },
  };
}

function password<P>(
  params: { [K in keyof P]: ParamSpec<P[K]> },
  algorithm: (p: P) => PasswordAlgorithm,
  check?: (p: P) => string | undefined,
) {
  return define<P & PasswordParams>({
    stage: 'row',
    params: { ...passwordParams, ...params } as {
      [K in keyof (P & PasswordParams)]: ParamSpec<(P & PasswordParams)[K]>;
    },
    check,
    fields: (values) => values.cleartext.fields,
    build: (values, env, rule) => passwordBehavior(rule, values, algorithm(values), env),
  });
}

/** Every transform type of transforms.yml. */
export const CATALOGUE: Readonly<Record<string, AnyTypeDef>> = {
  FakeName: fakeType(fake.fakeName),
  FakeFirstName: fakeType(fake.fakeFirstName),
  FakeLastName: fakeType(fake.fakeLastName),
  FakeEmail: fakeWith(
    {
      domain: p.optionalText((d) =>
        /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(d) ? undefined : 'must be a domain name like example.com',
      ),
    },
    (v) => fake.fakeEmail(v.domain),
  ),
  FakePhone: fakeType(fake.fakePhone),
  FakeSSN: fakeType(fake.fakeSSN),
  FakeDateOfBirth: define<{ min_year: number; max_year: number }>({
    stage: 'value',
    params: { min_year: p.int(1000, 9999, 1940), max_year: p.int(1000, 9999, 2005) },
    check: (v) => (v.min_year > v.max_year ? 'min_year must not be above max_year' : undefined),
    build: (v, env, rule) => ({
      kind: 'value',
      apply: keyed(rule.type, fake.fakeDateOfBirth(v.min_year, v.max_year), env),
    }),
  }),
  FakeUsername: fakeType(fake.fakeUsername),
  FakePassword: fakeWith({ length: p.int(4, 128, 16) }, (v) => fake.fakePassword(v.length)),
  FakeStreetAddress: fakeType(fake.fakeStreetAddress),
  FakeStreet: fakeType(fake.fakeStreet),
  FakeCity: fakeType(fake.fakeCity),
  FakeState: fakeType(fake.fakeState),
  FakeStateAbbr: fakeType(fake.fakeStateAbbr),
  FakeZip: fakeType(fake.fakeZip),
  FakeCountry: fakeType(fake.fakeCountry),
  FakeLatitude: fakeType(fake.fakeLatitude),
  FakeLongitude: fakeType(fake.fakeLongitude),
  FakeCompany: fakeType(fake.fakeCompany),
  FakeJobTitle: fakeType(fake.fakeJobTitle),
  FakeIndustry: fakeType(fake.fakeIndustry),
  FakeProduct: fakeType(fake.fakeProduct),
  FakeProductName: fakeType(fake.fakeProductName),
  FakeProductDescription: fakeType(fake.fakeProductDescription),
  FakeParagraph: fakeWith({ sentences: p.optionalInt(1, 100) }, (v) => fake.fakeParagraph(v.sentences)),
  FakeSentence: fakeWith({ words: p.optionalInt(1, 200) }, (v) => fake.fakeSentence(v.words)),
  FakeWord: fakeType(fake.fakeWord),
  FakeWords: fakeWith({ count: p.int(1, 200, 3) }, (v) => fake.fakeWords(v.count)),
  FakeCharacter: fakeType(fake.fakeCharacter),
  FakeCharacters: fakeWith({ length: p.int(1, 1000, 10) }, (v) => fake.fakeCharacters(v.length)),
  FakeDigits: fakeWith({ length: p.optionalInt(1, 30) }, (v) => fake.fakeDigits(v.length)),
  FakeCreditCardType: fakeType(fake.fakeCreditCardType),
  FakeCreditCardNum: fakeType(fake.fakeCreditCardNum),
  FakeCurrency: fakeWith({ format: p.oneOf(['code', 'name'], 'code') }, (v) => fake.fakeCurrency(v.format)),
  FakeMonth: fakeType(fake.fakeMonth),
  FakeMonthNum: fakeType(fake.fakeMonthNum),
  FakeWeekDay: fakeType(fake.fakeWeekDay),
  FakeYear: define<{ min: number; max: number }>({
    stage: 'value',
    params: { min: p.int(1000, 9999, 1950), max: p.int(1000, 9999, 2025) },
    check: (v) => (v.min > v.max ? 'min must not be above max' : undefined),
    build: (v, env, rule) => ({ kind: 'value', apply: keyed(rule.type, fake.fakeYear(v.min, v.max), env) }),
  }),
  FakeGender: fakeType(fake.fakeGender),
  FakeTitle: fakeType(fake.fakeTitle),
  FakeDomainName: fakeType(fake.fakeDomainName),
  Bool: fakeType(fake.fakeBool),

  Regex: define<{ pattern: p.CompiledRegex; replacement: string }>({
    stage: 'value',
    params: { pattern: p.regex(), replacement: p.text() },
    build: (v) => {
      const replace = goReplacement(v.replacement);
      return { kind: 'value', apply: authored((input) => input.replace(v.pattern.regex, replace)) };
    },
  }),
  Template: define<{ template: CompiledTemplate }>({
    stage: 'row',
    params: { template: p.template() },
    fields: (v) => v.template.fields,
    build: (v) => ({
      kind: 'row',
      fields: v.template.fields,
      usesOwnValue: false,
      evaluate: (lookup) => v.template.render(lookup),
    }),
  }),
  PasswordBcrypt: password({ cost: p.int(4, 31, 4), variant: p.oneOf(['2a', '2b', '2y'], '2b') }, (v) =>
    bcryptAlgorithm(v.cost, v.variant),
  ),
  PasswordScrypt: password(
    { n: p.int(2, 2 ** 24, 1024), r: p.int(1, 64, 8), p: p.int(1, 16, 1), key_length: p.int(16, 128, 32) },
    (v) => scryptAlgorithm(v.n, v.r, v.p, v.key_length),
    (v) =>
      !Number.isInteger(Math.log2(v.n))
        ? 'n must be a power of two'
        : 128 * v.n * v.r * v.p > 2 ** 30
          ? 'n * r * p needs more than 1 GiB of memory per hash (128 * n * r * p bytes)'
          : undefined,
  ),
  PasswordPBKDF2: password(
    {
      iterations: p.int(1, 10000000, 1000),
      hash: p.oneOf(['SHA1', 'SHA256', 'SHA512'], 'SHA256'),
      key_length: p.optionalInt(16, 128),
    },
    (v) => pbkdf2Algorithm(v.iterations, v.hash, v.key_length),
  ),
  PasswordArgon2id: password(
    {
      time: p.int(1, 100, 1),
      memory: p.int(8, 4194304, 1024),
      threads: p.int(1, 16, 1),
      hash_length: p.int(16, 128, 32),
    },
    (v) => argon2idAlgorithm(v.time, v.memory, v.threads, v.hash_length),
    (v) => (v.memory < 8 * v.threads ? 'memory must be at least 8 KiB per thread' : undefined),
  ),

  Keep: define<Record<string, never>>({
    stage: 'keep',
    params: {},
    build: () => ({ kind: 'keep' }),
  }),
  Null: define<Record<string, never>>({
    stage: 'null',
    params: {},
    build: () => ({ kind: 'null' }),
  }),
  Constant: define<{ value: string }>({
    stage: 'value',
    params: { value: p.scalarText() },
    build: (v) => ({ kind: 'value', apply: authored(() => v.value) }),
  }),
  Hash: define<{ length: number }>({
    stage: 'value',
    params: { length: p.int(8, 64, 32) },
    build: (v, env, rule) => ({
      kind: 'value',
      apply: keyed(
        rule.type,
        (rand) => {
          let hex = '';
          while (hex.length < v.length) hex += rand.u32().toString(16).padStart(8, '0');
          return hex.slice(0, v.length);
        },
        env,
      ),
    }),
  }),
  Mask: define<{ keep_first: number; keep_last: number; char: string; keep: string }>({
    stage: 'value',
    params: {
      keep_first: p.int(0, 1000, 0),
      keep_last: p.int(0, 1000, 4),
      char: p.char('*'),
      keep: p.text({ fallback: '' }),
    },
    build: (v) => ({
      kind: 'value',
      apply: authored((input) => mask(input, v.keep_first, v.keep_last, v.char, v.keep)),
    }),
  }),
  DateShift: define<{ min_days: number; max_days: number }>({
    stage: 'value',
    params: { min_days: p.int(0, 36500, 1), max_days: p.int(1, 36500, 30) },
    check: (v) => (v.min_days > v.max_days ? 'min_days must not be above max_days' : undefined),
    build: (v, env, rule) => ({
      kind: 'value',
      apply: keyed(rule.type, (rand, input) => shiftDate(rand, input, v.min_days, v.max_days), env),
    }),
  }),
  Noise: define<{ ratio: number | undefined; amount: number | undefined }>({
    stage: 'value',
    params: { ratio: p.optionalNumber(0, 100), amount: p.optionalNumber(0, Number.MAX_SAFE_INTEGER) },
    check: (v) =>
      v.ratio !== undefined && v.amount !== undefined ? 'give ratio or amount, not both' : undefined,
    build: (v, env, rule) => ({
      kind: 'value',
      apply: keyed(rule.type, (rand, input) => addNoise(rand, input, v.ratio, v.amount), env),
    }),
  }),
  Uuid: fakeType((rand) => uuidFrom(rand)),
  Json: define<Record<string, never>>({
    stage: 'json',
    params: {},
    build: (_v, env, rule) => {
      const paths = rule.paths.map((entry) => ({
        segments: entry.segments,
        behavior: buildBehavior(entry.rule, env),
      }));
      return {
        kind: 'value',
        apply: (input) => {
          let root = parseJson(input);
          let matched = 0;
          for (const { segments, behavior } of paths) {
            const result = applyPath(root, segments, (value) => {
              if (behavior.kind === 'null') return { t: 'null' };
              if (behavior.kind !== 'value') return value;
              return mapLeaves(value, (leaf) => jsonLeaf(behavior.apply, leaf));
            });
            root = result.root;
            matched += result.matched;
          }
          return matched === 0 ? input : serializeJson(root);
        },
      };
    },
  }),
};

export const TYPE_NAMES = Object.keys(CATALOGUE);

export function buildBehavior(rule: RuleSpec, env: BuildEnv): Behavior {
  const def = CATALOGUE[rule.type];
  if (!def) throw new Error(`unknown transform type ${rule.type}`);
  return def.build(rule.params, env, rule);
}
