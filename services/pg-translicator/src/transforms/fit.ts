import type { Rand } from './keyed.js';

/** What a column's type (format_type output) requires of a value, as far as transforms care. */
export type ScalarType =
  | { family: 'text'; maxChars: number | undefined }
  | { family: 'int'; min: bigint; max: bigint }
  | { family: 'numeric'; precision: number | undefined; scale: number }
  | { family: 'float' }
  | { family: 'bool' }
  | { family: 'date' }
  | { family: 'timestamp'; tz: boolean }
  | { family: 'time' }
  | { family: 'uuid' }
  | { family: 'json' }
  | { family: 'bytea' }
  | { family: 'other'; name: string };

export type ColumnType = ScalarType | { family: 'array'; element: ScalarType; delimiter: string };

export const TEXT: ScalarType = { family: 'text', maxChars: undefined };
export const NUMERIC: ScalarType = { family: 'numeric', precision: undefined, scale: -1 };
export const BOOL: ScalarType = { family: 'bool' };

const INT_RANGES: Record<string, [bigint, bigint]> = {
  smallint: [-32768n, 32767n],
  int2: [-32768n, 32767n],
  integer: [-2147483648n, 2147483647n],
  int: [-2147483648n, 2147483647n],
  int4: [-2147483648n, 2147483647n],
  bigint: [-9223372036854775808n, 9223372036854775807n],
  int8: [-9223372036854775808n, 9223372036854775807n],
};

function parseScalar(raw: string): ScalarType {
  const name = raw.trim().toLowerCase();
  let m: RegExpMatchArray | null;
  if (
    name === 'text' ||
    name === 'name' ||
    name === 'citext' ||
    name.endsWith('.citext') ||
    name === '"char"'
  ) {
    return { family: 'text', maxChars: name === '"char"' ? 1 : undefined };
  }
  if ((m = name.match(/^(?:character varying|varchar)(?:\((\d+)\))?$/))) {
    return { family: 'text', maxChars: m[1] === undefined ? undefined : Number(m[1]) };
  }
  if ((m = name.match(/^(?:character|char|bpchar)(?:\((\d+)\))?$/))) {
    return {
      family: 'text',
      maxChars: m[1] === undefined ? (name === 'bpchar' ? undefined : 1) : Number(m[1]),
    };
  }
  const range = INT_RANGES[name];
  if (range) return { family: 'int', min: range[0], max: range[1] };
  if ((m = name.match(/^(?:numeric|decimal)(?:\((\d+)(?:,\s*(-?\d+))?\))?$/))) {
    if (m[1] === undefined) return NUMERIC;
    return { family: 'numeric', precision: Number(m[1]), scale: m[2] === undefined ? 0 : Number(m[2]) };
  }
  if (name === 'real' || name === 'double precision' || name === 'float4' || name === 'float8') {
    return { family: 'float' };
  }
  if (name === 'boolean' || name === 'bool') return BOOL;
  if (name === 'date') return { family: 'date' };
  if ((m = name.match(/^timestamp(?:\(\d+\))?(?: (with|without) time zone)?$/))) {
    return { family: 'timestamp', tz: m[1] === 'with' };
  }
  if (name === 'timestamptz') return { family: 'timestamp', tz: true };
  if (/^time(?:\(\d+\))?(?: (?:with|without) time zone)?$/.test(name) || name === 'timetz') {
    return { family: 'time' };
  }
  if (name === 'uuid') return { family: 'uuid' };
  if (name === 'json' || name === 'jsonb') return { family: 'json' };
  if (name === 'bytea') return { family: 'bytea' };
  return { family: 'other', name: raw };
}

const typeCache = new Map<string, ColumnType>();

/** Parses format_type output (`character varying(255)`, `numeric(10,2)`, `text[]`, ...). */
export function parseColumnType(typeName: string): ColumnType {
  let cached = typeCache.get(typeName);
  if (cached === undefined) {
    const array = typeName.match(/^(.*?)((?:\[\d*\])+)$/);
    cached = array
      ? {
          family: 'array',
          element: parseScalar(array[1] ?? ''),
          delimiter: /^box$/i.test((array[1] ?? '').trim()) ? ';' : ',',
        }
      : parseScalar(typeName);
    typeCache.set(typeName, cached);
  }
  return cached;
}

export function describeType(type: ScalarType): string {
  switch (type.family) {
    case 'text':
      return type.maxChars === undefined ? 'text' : `text of at most ${type.maxChars} characters`;
    case 'int':
      return `integer between ${type.min} and ${type.max}`;
    case 'numeric':
      return type.precision === undefined ? 'number' : `numeric(${type.precision},${type.scale})`;
    case 'float':
      return 'floating-point number';
    case 'bool':
      return 'boolean';
    case 'timestamp':
      return type.tz ? 'timestamp with time zone' : 'timestamp';
    case 'other':
      return type.name;
    default:
      return type.family;
  }
}

function truncateChars(text: string, maxChars: number | undefined): string {
  if (maxChars === undefined || text.length <= maxChars) return text;
  return Array.from(text).slice(0, maxChars).join('');
}

const INT_RE = /^[+-]?\d+$/;
const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?$/;
const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const SPECIAL_FLOAT_RE = /^(?:[+-]?infinity|nan)$/i;
const DATE_RE = /^(\d{4,})-(\d{2})-(\d{2})(?: BC)?$/;
const TIME_PART = '\\d{2}:\\d{2}(?::\\d{2}(?:\\.\\d+)?)?';
const ZONE_PART = '(?:Z|[+-]\\d{2}(?::?\\d{2}){0,2})';
const TIMESTAMP_RE = new RegExp(`^(\\d{4,}-\\d{2}-\\d{2})(?:[ T](${TIME_PART})(${ZONE_PART})?)?( BC)?$`, 'i');
const TIME_RE = new RegExp(`^${TIME_PART}${ZONE_PART}?$`, 'i');
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const HEX_BYTEA_RE = /^\\x(?:[0-9a-f]{2})*$/i;
const TRUE_WORDS = new Set(['t', 'true', 'y', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['f', 'false', 'n', 'no', 'off', '0']);

function isRealDate(year: string, month: string, day: string): boolean {
  const m = Number(month);
  const d = Number(day);
  if (m < 1 || m > 12 || d < 1) return false;
  const y = Number(year);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1] ?? 0;
  return d <= days;
}

function validDate(text: string): boolean {
  const m = text.match(DATE_RE);
  return m !== null && isRealDate(m[1] ?? '', m[2] ?? '', m[3] ?? '');
}

/** Rounds a decimal text to `scale` digits (half away from zero, as PostgreSQL does). */
function roundDecimal(sign: string, int: string, frac: string, scale: number): string {
  if (frac.length <= scale) {
    return `${sign}${int || '0'}${scale > 0 ? '.' + frac.padEnd(scale, '0') : ''}`;
  }
  let scaled = BigInt((int || '0') + frac.slice(0, scale));
  if (Number(frac[scale]) >= 5) scaled += 1n;
  const digits = scaled.toString().padStart(scale + 1, '0');
  const intPart = digits.slice(0, digits.length - scale);
  const out = scale > 0 ? `${intPart}.${digits.slice(digits.length - scale)}` : intPart;
  return /^[0.]*$/.test(out) ? out : `${sign === '-' ? '-' : ''}${out}`;
}

function fitNumeric(
  text: string,
  type: { precision: number | undefined; scale: number },
): string | undefined {
  if (/^(?:nan|[+-]?infinity)$/i.test(text)) return type.precision === undefined ? text : undefined;
  const m = text.trim().match(DECIMAL_RE);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const sign = m[1] === '-' ? '-' : '';
  const int = (m[2] ?? '').replace(/^0+(?=\d)/, '');
  const frac = m[3] ?? '';
  if (type.precision === undefined) return `${sign}${int || '0'}${frac ? '.' + frac : ''}`;
  const rounded = roundDecimal(sign, int, frac, Math.max(type.scale, 0));
  const intDigits = rounded.replace(/^-/, '').split('.')[0]?.replace(/^0+/, '') ?? '';
  return intDigits.length <= type.precision - type.scale ? rounded : undefined;
}

/**
 * The value as the column's type accepts it, or undefined when it is not one. Used as is for what users write
 * (Constant, Regex, Template, passwords): an invalid value there is a configuration mistake and stops the pipeline.
 */
export function fitAuthored(text: string, type: ScalarType): string | undefined {
  switch (type.family) {
    case 'text':
      return truncateChars(text, type.maxChars);
    case 'int': {
      if (!INT_RE.test(text.trim())) return undefined;
      const value = BigInt(text.trim());
      return value >= type.min && value <= type.max ? value.toString() : undefined;
    }
    case 'numeric':
      return fitNumeric(text, type);
    case 'float':
      return FLOAT_RE.test(text.trim()) || SPECIAL_FLOAT_RE.test(text.trim()) ? text.trim() : undefined;
    case 'bool': {
      const word = text.trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return 't';
      return FALSE_WORDS.has(word) ? 'f' : undefined;
    }
    case 'date':
      return validDate(text) || /^-?infinity$/i.test(text) ? text : undefined;
    case 'timestamp': {
      if (/^-?infinity$/i.test(text)) return text;
      const m = text.match(TIMESTAMP_RE);
      if (!m || !validDate(m[1] ?? '')) return undefined;
      if (m[2] !== undefined) return text;
      return `${m[1]} 00:00:00${type.tz ? '+00' : ''}${m[4] ?? ''}`;
    }
    case 'time':
      return TIME_RE.test(text) ? text : undefined;
    case 'uuid': {
      if (!UUID_RE.test(text)) return undefined;
      const hex = text.replace(/-/g, '').toLowerCase();
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
    case 'json':
      try {
        JSON.parse(text);
        return text;
      } catch {
        return JSON.stringify(text);
      }
    case 'bytea':
      return HEX_BYTEA_RE.test(text) ? text : `\\x${Buffer.from(text, 'utf8').toString('hex')}`;
    case 'other':
      return text;
  }
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** A date between 1970-01-01 and 2029-12-31. */
export function randomDate(rand: Rand, minYear = 1970, maxYear = 2029): string {
  const start = Date.UTC(minYear, 0, 1) / 86400000;
  const end = Date.UTC(maxYear, 11, 31) / 86400000;
  return new Date(rand.between(start, end) * 86400000).toISOString().slice(0, 10);
}

function randomTime(rand: Rand): string {
  return `${pad(rand.int(24))}:${pad(rand.int(60))}:${pad(rand.int(60))}`;
}

export function uuidFrom(rand: Rand): string {
  const hex = [rand.u32(), rand.u32(), rand.u32(), rand.u32()]
    .map((w) => w.toString(16).padStart(8, '0'))
    .join('');
  const variant = ((parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * A generated value (Fake*, Hash, Uuid, ...) made to fit its column: kept when the type accepts it, otherwise
 * replaced by a value of the column's type drawn from the same digest, so the result is still deterministic.
 */
export function fitGenerated(text: string, type: ScalarType, rand: Rand): string {
  const fitted = fitAuthored(text, type);
  if (fitted !== undefined) return fitted;
  switch (type.family) {
    case 'int':
      return (rand.bigint(type.max) + 1n).toString();
    case 'numeric': {
      const intDigits = Math.min((type.precision ?? 8) - Math.max(type.scale, 0), 6);
      const int = intDigits > 0 ? String(rand.int(10 ** intDigits)) : '0';
      return type.scale > 0 ? `${int}.${rand.digits(type.scale)}` : int;
    }
    case 'float':
      return (rand.float() * 1000).toFixed(6);
    case 'bool':
      return rand.int(2) === 1 ? 't' : 'f';
    case 'date':
      return randomDate(rand);
    case 'timestamp':
      return `${randomDate(rand)} ${randomTime(rand)}${type.tz ? '+00' : ''}`;
    case 'time':
      return randomTime(rand);
    case 'uuid':
      return uuidFrom(rand);
    default:
      return text;
  }
}
