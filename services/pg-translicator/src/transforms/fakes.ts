import { en } from '@faker-js/faker';
import { randomDate, type ScalarType } from './fit.js';
import { permuteDigits } from './fpe.js';
import type { Keyer, Rand } from './keyed.js';

/**
 * Fake values drawn from @faker-js/faker's English locale data, indexed with a keyed digest instead of faker's
 * seeded generator: reseeding faker for every value would be far too slow, and picking from the arrays is all
 * it does for these types anyway.
 */

export interface GenContext {
  type: ScalarType;
  keyer: Keyer;
  identity: string;
}

export type Generator = (rand: Rand, input: string, ctx: GenContext) => string;

function strings(value: unknown, what: string): readonly string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) {
    throw new Error(`@faker-js/faker locale data has no ${what}`);
  }
  return value as string[];
}

function field<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`@faker-js/faker locale data has no ${what}`);
  return value;
}

const person = field(en.person, 'person');
const location = field(en.location, 'location');
const company = field(en.company, 'company');
const commerce = field(en.commerce, 'commerce');
const date = field(en.date, 'date');
const word = field(en.word, 'word');
const firstNames = field(person.first_name, 'person.first_name');
const productName = field(commerce.product_name, 'commerce.product_name');

const FIRST_NAMES = [
  ...new Set([
    ...strings(firstNames.female, 'female first names'),
    ...strings(firstNames.male, 'male first names'),
    ...strings(firstNames.generic, 'first names'),
  ]),
];
const LAST_NAMES = strings(field(person.last_name, 'person.last_name').generic, 'last names');
const PREFIXES = [
  ...new Set([
    ...strings(field(person.prefix, 'person.prefix').male, 'male prefixes'),
    ...strings(person.prefix?.female, 'female prefixes'),
    ...strings(person.prefix?.generic, 'prefixes'),
  ]),
];
const JOB_DESCRIPTORS = strings(person.job_descriptor, 'job descriptors');
const JOB_AREAS = strings(person.job_area, 'job areas');
const JOB_TYPES = strings(person.job_type, 'job types');
const CITIES = strings(location.city_name, 'city names');
const STATES = strings(location.state, 'states');
const STATE_ABBRS = strings(location.state_abbr, 'state abbreviations');
const COUNTRIES = strings(location.country, 'countries');
const STREET_NAMES = strings(location.street_name, 'street names');
const STREET_SUFFIXES = strings(location.street_suffix, 'street suffixes');
const LEGAL_ENTITIES = strings(company.legal_entity_type, 'legal entity types');
const COMPANY_NAME_PATTERNS = strings(company.name_pattern, 'company name patterns');
const CATCH_ADJECTIVES = strings(company.adjective, 'company adjectives');
const CATCH_DESCRIPTORS = strings(company.descriptor, 'company descriptors');
const CATCH_NOUNS = strings(company.noun, 'company nouns');
const PRODUCTS = strings(productName.product, 'products');
const PRODUCT_ADJECTIVES = strings(productName.adjective, 'product adjectives');
const PRODUCT_MATERIALS = strings(productName.material, 'product materials');
const PRODUCT_DESCRIPTIONS = strings(commerce.product_description, 'product descriptions');
const LOREM = strings(en.lorem?.word, 'lorem words');
const ADJECTIVES = strings(word.adjective, 'adjectives');
const NOUNS = strings(word.noun, 'nouns');
const MONTHS = strings(date.month?.wide, 'month names');
const WEEKDAYS = strings(date.weekday?.wide, 'weekday names');
const COLORS = strings(en.color?.human, 'colors');
const ANIMALS = strings(en.animal?.type, 'animal types');
const FOOD_ADJECTIVES = strings(en.food?.adjective, 'food adjectives');
const DOMAIN_SUFFIXES = strings(en.internet?.domain_suffix, 'domain suffixes');
const CHEMICAL_ELEMENTS = field(en.science?.chemical_element, 'chemical elements').map((e) => e.name);
const CURRENCIES = field(en.finance?.currency, 'currencies');
const PHONE_FORMATS = strings(en.phone_number?.format?.human, 'phone formats').filter(
  (f) => !f.includes('x'),
);

/** faker has no industry list. */
const INDUSTRIES = [
  'Accounting',
  'Advertising',
  'Aerospace',
  'Agriculture',
  'Automotive',
  'Banking',
  'Biotechnology',
  'Chemicals',
  'Construction',
  'Consulting',
  'Consumer Electronics',
  'Cybersecurity',
  'Defense',
  'Education',
  'Energy',
  'Entertainment',
  'Fashion',
  'Financial Services',
  'Food and Beverage',
  'Gaming',
  'Government',
  'Healthcare',
  'Hospitality',
  'Insurance',
  'Logistics',
  'Manufacturing',
  'Media',
  'Mining',
  'Nonprofit',
  'Pharmaceuticals',
  'Real Estate',
  'Renewable Energy',
  'Retail',
  'Software',
  'Telecommunications',
  'Transportation',
  'Travel',
  'Utilities',
];
const TITLES = PREFIXES;
const GENDERS = ['Female', 'Male'];
const CARD_TYPES = ['Visa', 'Mastercard', 'American Express', 'Discover', 'JCB', 'Diners Club'];
/** Reserved for documentation (RFC 2606): mail to a fake address never reaches anyone. */
const EXAMPLE_DOMAINS = ['example.com', 'example.net', 'example.org'];
/** Crockford base32 in lower case: no i, l, o or u to misread. */
const TOKEN_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const PASSWORD_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!@#$%^&*-_';

type Piece = string | ((rand: Rand) => string);

const PLACEHOLDERS: Record<string, (rand: Rand) => string> = {
  'person.firstName': (r) => r.pick(FIRST_NAMES),
  'person.lastName': (r) => r.pick(LAST_NAMES),
  'company.legal_entity_type': (r) => r.pick(LEGAL_ENTITIES),
  'company.name': (r) => companyName(r),
  'company.catchPhrase': (r) =>
    `${r.pick(CATCH_ADJECTIVES)} ${r.pick(CATCH_DESCRIPTORS)} ${r.pick(CATCH_NOUNS)}`,
  'commerce.product': (r) => r.pick(PRODUCTS),
  'commerce.productAdjective': (r) => r.pick(PRODUCT_ADJECTIVES),
  'commerce.productMaterial': (r) => r.pick(PRODUCT_MATERIALS),
  'word.adjective': (r) => r.pick(ADJECTIVES),
  'animal.type': (r) => r.pick(ANIMALS),
  'color.human': (r) => r.pick(COLORS),
  'food.adjective': (r) => r.pick(FOOD_ADJECTIVES),
  'location.country': (r) => r.pick(COUNTRIES),
  'science.chemical_element.name': (r) => r.pick(CHEMICAL_ELEMENTS),
};

/** Compiles faker's `{{section.name}}` patterns once; an unknown placeholder fails at load, not mid-stream. */
function compilePattern(pattern: string): Piece[] {
  return pattern.split(/(\{\{.+?\}\})/).map((part): Piece => {
    const m = part.match(/^\{\{(.+)\}\}$/);
    if (!m) return part;
    const name = m[1] ?? '';
    const range = name.match(/^number\.int\((\{.*\})\)$/);
    if (range) {
      const { min, max } = JSON.parse(range[1] ?? '{}') as { min: number; max: number };
      return (r) => String(r.between(min, max));
    }
    const resolve = PLACEHOLDERS[name];
    if (!resolve) throw new Error(`unsupported @faker-js/faker placeholder {{${name}}}`);
    return resolve;
  });
}

function fill(pieces: Piece[], rand: Rand): string {
  let out = '';
  for (const piece of pieces) out += typeof piece === 'string' ? piece : piece(rand);
  return out;
}

const COMPANY_PATTERNS = COMPANY_NAME_PATTERNS.map(compilePattern);
const DESCRIPTION_PATTERNS = PRODUCT_DESCRIPTIONS.map(compilePattern);

function companyName(rand: Rand): string {
  return fill(rand.pick(COMPANY_PATTERNS), rand);
}

function isNumberColumn(type: ScalarType): boolean {
  return type.family === 'int' || type.family === 'numeric' || type.family === 'float';
}

function maxChars(type: ScalarType): number | undefined {
  return type.family === 'text' ? type.maxChars : undefined;
}

function asciiName(name: string): string {
  return name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z]/g, '');
}

/**
 * `first.last.token` with a 50-bit token (65 bits when the names must be cut), so that with the ~2^20 name pairs
 * a million distinct inputs collide with probability about 1e-10 (birthday bound n^2 / 2N).
 */
function handle(rand: Rand, separator: string, suffix: string, max: number | undefined): string {
  const first = asciiName(rand.pick(FIRST_NAMES));
  const last = asciiName(rand.pick(LAST_NAMES));
  const token = rand.base32(TOKEN_ALPHABET, 13);
  const full = `${first}${separator}${last}${separator}${token.slice(0, 10)}${suffix}`;
  if (max === undefined || full.length <= max) return full;
  const room = max - suffix.length;
  if (room <= 0) return full;
  const tokenLength = Math.min(13, room);
  const nameRoom = room - tokenLength - 1;
  const name = nameRoom > 0 ? `${`${first}${separator}${last}`.slice(0, nameRoom)}${separator}` : '';
  return `${name}${token.slice(0, tokenLength)}${suffix}`;
}

export function fakeEmail(domain: string | undefined): Generator {
  return (rand, _input, ctx) => {
    const host = domain ?? rand.pick(EXAMPLE_DOMAINS);
    return handle(rand, '.', `@${host}`, maxChars(ctx.type));
  };
}

export const fakeUsername: Generator = (rand, _input, ctx) => handle(rand, '_', '', maxChars(ctx.type));

/** Replaces the digits of `input` in place by their keyed permutation, keeping the first `keep` digits. */
function permuteInPlace(input: string, ctx: GenContext, keep = 0, luhn = false): string {
  const digits = input.replace(/\D/g, '');
  let permuted =
    digits.slice(0, keep) +
    permuteDigits(ctx.keyer, ctx.identity, digits.slice(keep, luhn ? digits.length - 1 : digits.length));
  if (luhn) permuted += luhnDigit(permuted);
  let i = 0;
  return input.replace(/\d/g, () => permuted[i++] ?? '0');
}

function digitCount(input: string): number {
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

function fromFormat(rand: Rand, format: string): string {
  let out = '';
  for (const ch of format) {
    if (ch === '#') out += String(rand.int(10));
    else if (ch === '!') out += String(2 + rand.int(8));
    else out += ch;
  }
  return out;
}

export const fakePhone: Generator = (rand, input, ctx) => {
  const count = digitCount(input);
  if (count >= 7 && count <= 15 && /^[\d\s()+.\-/]+$/.test(input)) {
    // An international number keeps its country code: "+1 (555) ..." stays "+1 (...) ...".
    const countryCode = input.match(/^\s*\+(\d{1,3})(?=\D)/)?.[1] ?? (/^\s*\+/.test(input) ? '1' : '');
    return permuteInPlace(input, ctx, countryCode.length);
  }
  const phone = fromFormat(rand, rand.pick(PHONE_FORMATS));
  return isNumberColumn(ctx.type) ? phone.replace(/\D/g, '') : phone;
};

export const fakeSSN: Generator = (rand, input, ctx) => {
  if (digitCount(input) === 9 && /^[\d\s-]+$/.test(input)) return permuteInPlace(input, ctx);
  let area = rand.between(1, 898);
  if (area >= 666) area++;
  const ssn = `${String(area).padStart(3, '0')}-${String(rand.between(1, 99)).padStart(2, '0')}-${String(rand.between(1, 9999)).padStart(4, '0')}`;
  return isNumberColumn(ctx.type) ? ssn.replace(/-/g, '') : ssn;
};

function luhnDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

const CARD_PREFIXES: [string, number][] = [
  ['4', 16],
  ['51', 16],
  ['52', 16],
  ['53', 16],
  ['54', 16],
  ['55', 16],
  ['34', 15],
  ['37', 15],
  ['6011', 16],
];

/** Luhn-valid; a card number keeps its layout and first digit (the scheme) and stays unique. */
export const fakeCreditCardNum: Generator = (rand, input, ctx) => {
  const count = digitCount(input);
  if (count >= 12 && count <= 19 && /^[\d\s-]+$/.test(input)) return permuteInPlace(input, ctx, 1, true);
  const [prefix, length] = rand.pick(CARD_PREFIXES);
  const body = prefix + rand.digits(length - prefix.length - 1);
  return body + luhnDigit(body);
};

export const fakeZip: Generator = (rand, input, ctx) => {
  if (/^\d{5}(?:-\d{4})?$/.test(input)) return permuteInPlace(input, ctx);
  return rand.digits(5);
};

export function fakeDigits(length: number | undefined): Generator {
  return (rand, input, ctx) => {
    if (/^\d{1,30}$/.test(input) && (length === undefined || input.length === length)) {
      return permuteInPlace(input, ctx);
    }
    return rand.digits(length ?? 10);
  };
}

const pick =
  (items: readonly string[]): Generator =>
  (rand) =>
    rand.pick(items);

export const fakeFirstName = pick(FIRST_NAMES);
export const fakeLastName = pick(LAST_NAMES);
export const fakeName: Generator = (rand) => `${rand.pick(FIRST_NAMES)} ${rand.pick(LAST_NAMES)}`;
export const fakeTitle = pick(TITLES);
export const fakeGender = pick(GENDERS);
export const fakeCity = pick(CITIES);
export const fakeState = pick(STATES);
export const fakeStateAbbr = pick(STATE_ABBRS);
export const fakeCountry = pick(COUNTRIES);
export const fakeIndustry = pick(INDUSTRIES);
export const fakeProduct = pick(PRODUCTS);
export const fakeCreditCardType = pick(CARD_TYPES);
export const fakeMonth = pick(MONTHS);
export const fakeWeekDay = pick(WEEKDAYS);
export const fakeWord = pick(LOREM);
export const fakeCompany: Generator = (rand) => companyName(rand);
export const fakeJobTitle: Generator = (rand) =>
  `${rand.pick(JOB_DESCRIPTORS)} ${rand.pick(JOB_AREAS)} ${rand.pick(JOB_TYPES)}`;
export const fakeProductName: Generator = (rand) =>
  `${rand.pick(PRODUCT_ADJECTIVES)} ${rand.pick(PRODUCT_MATERIALS)} ${rand.pick(PRODUCTS)}`;
export const fakeProductDescription: Generator = (rand) => fill(rand.pick(DESCRIPTION_PATTERNS), rand);

export const fakeStreet: Generator = (rand) => {
  switch (rand.int(3)) {
    case 0:
      return `${rand.pick(FIRST_NAMES)} ${rand.pick(STREET_SUFFIXES)}`;
    case 1:
      return `${rand.pick(LAST_NAMES)} ${rand.pick(STREET_SUFFIXES)}`;
    default:
      return rand.pick(STREET_NAMES);
  }
};

const BUILDING_NUMBER_LENGTHS = strings(location.building_number, 'building numbers').map((f) => f.length);

export const fakeStreetAddress: Generator = (rand, input, ctx) =>
  `${rand.between(1, 9)}${rand.digits(rand.pick(BUILDING_NUMBER_LENGTHS) - 1)} ${fakeStreet(rand, input, ctx)}`;

export const fakeMonthNum: Generator = (rand) => String(rand.between(1, 12));
export const fakeLatitude: Generator = (rand) => (rand.float() * 180 - 90).toFixed(6);
export const fakeLongitude: Generator = (rand) => (rand.float() * 360 - 180).toFixed(6);

export function fakeYear(min: number, max: number): Generator {
  return (rand) => String(rand.between(min, max));
}

export function fakeDateOfBirth(minYear: number, maxYear: number): Generator {
  return (rand) => randomDate(rand, minYear, maxYear);
}

export function fakeCurrency(format: string): Generator {
  return (rand) => {
    const currency = rand.pick(CURRENCIES);
    return format === 'name' ? currency.name : currency.code;
  };
}

export const fakeDomainName: Generator = (rand) =>
  `${asciiName(rand.pick(ADJECTIVES))}-${asciiName(rand.pick(NOUNS))}.${rand.pick(DOMAIN_SUFFIXES)}`;

function words(rand: Rand, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(rand.pick(LOREM));
  return out;
}

export function fakeWords(count: number): Generator {
  return (rand) => words(rand, count).join(' ');
}

function sentence(rand: Rand, count: number): string {
  const text = words(rand, count).join(' ');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

export function fakeSentence(count: number | undefined): Generator {
  return (rand) => sentence(rand, count ?? rand.between(6, 12));
}

export function fakeParagraph(count: number | undefined): Generator {
  return (rand) => {
    const n = count ?? rand.between(3, 6);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(sentence(rand, rand.between(6, 12)));
    return out.join(' ');
  };
}

export const fakeCharacter: Generator = (rand) => rand.chars('abcdefghijklmnopqrstuvwxyz', 1);

export function fakeCharacters(length: number): Generator {
  return (rand) => rand.chars('abcdefghijklmnopqrstuvwxyz0123456789', length);
}

export function fakePassword(length: number): Generator {
  return (rand) => rand.chars(PASSWORD_ALPHABET, length);
}

export const fakeBool: Generator = (rand, _input, ctx) => {
  const value = rand.int(2) === 1;
  if (ctx.type.family === 'bool') return value ? 't' : 'f';
  if (isNumberColumn(ctx.type)) return value ? '1' : '0';
  return value ? 'true' : 'false';
};
