import { TransformFailure } from './errors.js';

/**
 * A JSON document parsed without loss: numbers keep their text (jsonb numbers are arbitrary-precision) and objects
 * keep every key in order, so the parts no path touches come out as they went in.
 */
export type JsonValue =
  | { t: 'obj'; entries: [string, JsonValue][] }
  | { t: 'arr'; items: JsonValue[] }
  | { t: 'str'; v: string }
  | { t: 'num'; raw: string }
  | { t: 'bool'; v: boolean }
  | { t: 'null' };

const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING_RE = /"(?:[^"\\]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

export function parseJson(text: string): JsonValue {
  let pos = 0;
  const fail = (): never => {
    throw new TransformFailure('the value is not valid JSON');
  };
  const space = () => {
    while (pos < text.length && ' \t\n\r'.includes(text[pos] ?? '')) pos++;
  };
  const string = (): string => {
    STRING_RE.lastIndex = pos;
    const m = STRING_RE.exec(text);
    if (!m) return fail();
    pos += m[0].length;
    try {
      return JSON.parse(m[0]) as string;
    } catch {
      return fail();
    }
  };
  const value = (): JsonValue => {
    space();
    const ch = text[pos];
    if (ch === '{') {
      pos++;
      const entries: [string, JsonValue][] = [];
      space();
      if (text[pos] === '}') {
        pos++;
        return { t: 'obj', entries };
      }
      for (;;) {
        space();
        const key = string();
        space();
        if (text[pos++] !== ':') fail();
        entries.push([key, value()]);
        space();
        const next = text[pos++];
        if (next === '}') return { t: 'obj', entries };
        if (next !== ',') fail();
      }
    }
    if (ch === '[') {
      pos++;
      const items: JsonValue[] = [];
      space();
      if (text[pos] === ']') {
        pos++;
        return { t: 'arr', items };
      }
      for (;;) {
        items.push(value());
        space();
        const next = text[pos++];
        if (next === ']') return { t: 'arr', items };
        if (next !== ',') fail();
      }
    }
    if (ch === '"') return { t: 'str', v: string() };
    for (const [word, result] of [
      ['true', { t: 'bool', v: true }],
      ['false', { t: 'bool', v: false }],
      ['null', { t: 'null' }],
    ] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return result;
      }
    }
    NUMBER_RE.lastIndex = pos;
    const m = NUMBER_RE.exec(text);
    if (!m) return fail();
    pos += m[0].length;
    return { t: 'num', raw: m[0] };
  };
  const root = value();
  space();
  if (pos !== text.length) fail();
  return root;
}

export function serializeJson(value: JsonValue): string {
  switch (value.t) {
    case 'obj':
      return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}: ${serializeJson(v)}`).join(', ')}}`;
    case 'arr':
      return `[${value.items.map(serializeJson).join(', ')}]`;
    case 'str':
      return JSON.stringify(value.v);
    case 'num':
      return value.raw;
    case 'bool':
      return value.v ? 'true' : 'false';
    case 'null':
      return 'null';
  }
}

export type PathSegment =
  { k: 'key'; name: string } | { k: 'index'; n: number } | { k: 'wild' } | { k: 'descendant'; name: string };

/**
 * Compiles a JSONPath subset: `$`, `.key`, `['key']`, `[0]`, `[-1]`, `[*]`, `.*` and `..key` (the key at any depth).
 * Throws an Error whose message says what is wrong.
 */
export function compilePath(path: string): PathSegment[] {
  if (!path.startsWith('$')) throw new Error('a JSON path starts with $, e.g. $.contact.email');
  const segments: PathSegment[] = [];
  let pos = 1;
  const name = (): string => {
    const m = path.slice(pos).match(/^[^.[\]\s'"]+/);
    if (!m) throw new Error(`expected a key name at character ${pos + 1}`);
    pos += m[0].length;
    return m[0];
  };
  while (pos < path.length) {
    if (path.startsWith('..', pos)) {
      pos += 2;
      segments.push({ k: 'descendant', name: name() });
    } else if (path[pos] === '.') {
      pos++;
      if (path[pos] === '*') {
        pos++;
        segments.push({ k: 'wild' });
      } else segments.push({ k: 'key', name: name() });
    } else if (path[pos] === '[') {
      const m = path.slice(pos).match(/^\[\s*(?:(\*)|(-?\d+)|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]/);
      if (!m) throw new Error(`expected [*], [number] or ['key'] at character ${pos + 1}`);
      pos += m[0].length;
      if (m[1]) segments.push({ k: 'wild' });
      else if (m[2] !== undefined) segments.push({ k: 'index', n: Number(m[2]) });
      else segments.push({ k: 'key', name: (m[3] ?? m[4] ?? '').replace(/\\(.)/g, '$1') });
    } else {
      throw new Error(`unexpected ${JSON.stringify(path[pos])} at character ${pos + 1}`);
    }
  }
  return segments;
}

/** Replaces every value the path matches by `fn(value)`; returns the new document and how many matched. */
export function applyPath(
  root: JsonValue,
  segments: readonly PathSegment[],
  fn: (v: JsonValue) => JsonValue,
): { root: JsonValue; matched: number } {
  let matched = 0;
  let result = root;
  const visit = (node: JsonValue, index: number, replace: (v: JsonValue) => void): void => {
    const segment = segments[index];
    if (segment === undefined) {
      matched++;
      replace(fn(node));
      return;
    }
    switch (segment.k) {
      case 'key':
        if (node.t === 'obj') {
          for (const entry of node.entries) {
            if (entry[0] === segment.name) visit(entry[1], index + 1, (v) => (entry[1] = v));
          }
        }
        return;
      case 'index':
        if (node.t === 'arr') {
          const i = segment.n < 0 ? node.items.length + segment.n : segment.n;
          if (i >= 0 && i < node.items.length)
            visit(node.items[i] as JsonValue, index + 1, (v) => (node.items[i] = v));
        }
        return;
      case 'wild':
        if (node.t === 'obj')
          for (const entry of node.entries) visit(entry[1], index + 1, (v) => (entry[1] = v));
        if (node.t === 'arr')
          node.items.forEach((item, i) => visit(item, index + 1, (v) => (node.items[i] = v)));
        return;
      case 'descendant':
        if (node.t === 'obj') {
          for (const entry of node.entries) {
            if (entry[0] === segment.name) visit(entry[1], index + 1, (v) => (entry[1] = v));
            else visit(entry[1], index, (v) => (entry[1] = v));
          }
        }
        if (node.t === 'arr') node.items.forEach((item, i) => visit(item, index, (v) => (node.items[i] = v)));
        return;
    }
  };
  visit(root, 0, (v) => (result = v));
  return { root: result, matched };
}

/** Applies `fn` to every string, number and boolean inside a value (the value itself when it is one). */
export function mapLeaves(value: JsonValue, fn: (leaf: JsonValue) => JsonValue): JsonValue {
  switch (value.t) {
    case 'obj':
      return { t: 'obj', entries: value.entries.map(([k, v]) => [k, mapLeaves(v, fn)]) };
    case 'arr':
      return { t: 'arr', items: value.items.map((v) => mapLeaves(v, fn)) };
    case 'null':
      return value;
    default:
      return fn(value);
  }
}
