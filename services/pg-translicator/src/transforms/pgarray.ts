import { TransformFailure } from './errors.js';

/** A PostgreSQL array value: nested lists of element texts, NULL elements as null. */
export type PgArray = (string | null | PgArray)[];

export interface ParsedArray {
  /** Dimension decoration such as `[0:2]=`, kept as is. */
  prefix: string;
  items: PgArray;
}

/** Parses the text form of an array (`{a,"b c",NULL,{1,2}}`, optionally `[0:1]={...}`). */
export function parseArray(text: string, delimiter: string): ParsedArray {
  let pos = 0;
  const fail = (): never => {
    throw new TransformFailure('the value is not a valid array literal');
  };
  const prefix = text.match(/^\s*((?:\[-?\d+:-?\d+\])+\s*=\s*)?/)?.[0] ?? '';
  pos = prefix.length;

  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos] ?? '')) pos++;
  };

  const parseList = (): PgArray => {
    if (text[pos] !== '{') fail();
    pos++;
    const items: PgArray = [];
    skipSpace();
    if (text[pos] === '}') {
      pos++;
      return items;
    }
    for (;;) {
      skipSpace();
      const ch = text[pos];
      if (ch === '{') {
        items.push(parseList());
      } else if (ch === '"') {
        pos++;
        let value = '';
        while (pos < text.length && text[pos] !== '"') {
          if (text[pos] === '\\') pos++;
          value += text[pos] ?? '';
          pos++;
        }
        if (text[pos] !== '"') fail();
        pos++;
        items.push(value);
      } else {
        let value = '';
        let quotedChars = false;
        while (pos < text.length && text[pos] !== delimiter && text[pos] !== '}') {
          if (text[pos] === '\\') {
            pos++;
            quotedChars = true;
          }
          value += text[pos] ?? '';
          pos++;
        }
        value = value.trim();
        if (value === '') fail();
        items.push(!quotedChars && value.toUpperCase() === 'NULL' ? null : value);
      }
      skipSpace();
      if (text[pos] === delimiter) {
        pos++;
        continue;
      }
      if (text[pos] === '}') {
        pos++;
        return items;
      }
      fail();
    }
  };

  const items = parseList();
  skipSpace();
  if (pos !== text.length) fail();
  return { prefix, items };
}

function quote(value: string, delimiter: string): string {
  if (
    value === '' ||
    value.toUpperCase() === 'NULL' ||
    /[{}"\\\s]/.test(value) ||
    value.includes(delimiter)
  ) {
    return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  }
  return value;
}

export function serializeArray(array: ParsedArray, delimiter: string): string {
  const list = (items: PgArray): string =>
    `{${items
      .map((item) => (item === null ? 'NULL' : Array.isArray(item) ? list(item) : quote(item, delimiter)))
      .join(delimiter)}}`;
  return array.prefix + list(array.items);
}

/** Applies `fn` to every non-NULL element; a null result makes the element NULL. */
export function mapArray(items: PgArray, fn: (element: string) => string | null): PgArray {
  return items.map((item) => (item === null ? null : Array.isArray(item) ? mapArray(item, fn) : fn(item)));
}
