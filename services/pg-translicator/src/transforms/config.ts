import { readFileSync } from 'node:fs';
import { isAlias, isMap, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { ConfigError } from '@kasho/common';
import { CATALOGUE, TYPE_NAMES, type RuleSpec, type Stage } from './catalogue.js';
import { compilePath } from './json.js';

/** A column's rule as written in transforms.yml, validated. */
export interface ColumnRule extends RuleSpec {
  readonly stage: Stage;
  /** Columns a Template or password cleartext reads. */
  readonly fields: readonly string[];
  /** Where the rule is written, `file:line:column`, for messages. */
  readonly location: string;
}

export interface TableRules {
  readonly schema: string;
  readonly name: string;
  /** `schema.table` as users write it, quoted where needed. */
  readonly display: string;
  readonly columns: ReadonlyMap<string, ColumnRule>;
  /** Row-stage columns (Template, Password*) in evaluation order: a column comes after those it reads. */
  readonly rowOrder: readonly string[];
}

export interface TransformConfig {
  readonly file: string;
  /** `strict: true`: in a table with rules, a column without one stops the pipeline. */
  readonly strict: boolean;
  /** Keyed by tableKey(schema, name). */
  readonly tables: ReadonlyMap<string, TableRules>;
}

export function tableKey(schema: string, name: string): string {
  return `${schema}\0${name}`;
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

export function displayTable(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

const IDENT_PART = '(?:"((?:[^"]|"")+)"|([^."]+))';
const TABLE_NAME_RE = new RegExp(`^${IDENT_PART}\\.${IDENT_PART}$`);

/** `schema.table`, each part bare or double-quoted (`"My Schema"."Orders.2024"`); names match exactly. */
function parseTableName(key: string): { schema: string; name: string } | undefined {
  const m = key.trim().match(TABLE_NAME_RE);
  if (!m) return undefined;
  const part = (quoted: string | undefined, bare: string | undefined) =>
    quoted !== undefined ? quoted.replace(/""/g, '"') : (bare ?? '').trim();
  const schema = part(m[1], m[2]);
  const name = part(m[3], m[4]);
  return schema && name ? { schema, name } : undefined;
}

/** An absent value (`key:` with nothing after it). */
function isEmpty(node: Node | null): boolean {
  return node === null || (isScalar(node) && node.value === null && (node.source ?? '') === '');
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

function suggest(word: string, candidates: readonly string[]): string {
  const lower = word.toLowerCase();
  const best = candidates
    .map((c) => ({ c, d: c.toLowerCase() === lower ? 0 : distance(lower, c.toLowerCase()) }))
    .sort((x, y) => x.d - y.d)[0];
  return best && best.d <= Math.max(2, Math.floor(word.length / 4)) ? ` (did you mean ${best.c}?)` : '';
}

interface Problem {
  offset: number;
  reason: string;
}

class Validator {
  readonly problems: Problem[] = [];
  private readonly ruleOffsets = new WeakMap<ColumnRule, number>();
  private readonly lines = new LineCounter();
  readonly doc: Document.Parsed;

  constructor(
    readonly text: string,
    readonly file: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
  }

  location(offset: number): string {
    const { line, col } = this.lines.linePos(offset);
    return `${this.file}:${line}:${col}`;
  }

  report(node: Node | null | undefined, reason: string): void {
    this.problems.push({ offset: node?.range?.[0] ?? 0, reason });
  }

  resolve(node: unknown): Node | null {
    if (isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return (node as Node | null) ?? null;
  }

  keyName(key: unknown): string | undefined {
    return isScalar(key) && (typeof key.value === 'string' || typeof key.value === 'number')
      ? String(key.value)
      : undefined;
  }

  validate(): TransformConfig {
    for (const error of this.doc.errors) this.problems.push({ offset: error.pos[0], reason: error.message });
    if (this.doc.errors.some((e) => e.code !== 'DUPLICATE_KEY')) return this.result(false, new Map());

    const root = this.resolve(this.doc.contents);
    if (root === null) {
      this.report(null, 'the file is empty; it needs `version: v1` and `tables:`');
      return this.result(false, new Map());
    }
    if (!isMap(root)) {
      this.report(root, 'expected a mapping with `version: v1` and `tables:`');
      return this.result(false, new Map());
    }
    let strict = false;
    let sawVersion = false;
    let sawTables = false;
    const tables = new Map<string, TableRules>();
    for (const pair of root.items) {
      const key = this.keyName(pair.key);
      const value = this.resolve(pair.value);
      const keyNode = pair.key as Node;
      if (key === 'version') {
        sawVersion = true;
        if (!isScalar(value) || value.value !== 'v1') this.report(value ?? keyNode, 'version must be v1');
      } else if (key === 'strict') {
        if (!isScalar(value) || typeof value.value !== 'boolean')
          this.report(value ?? keyNode, 'strict must be true or false');
        else strict = value.value;
      } else if (key === 'tables') {
        sawTables = true;
        this.tables(value, keyNode, tables);
      } else {
        this.report(
          keyNode,
          `unknown key ${JSON.stringify(key ?? '')}; the top level has version, tables and strict`,
        );
      }
    }
    if (!sawVersion) this.report(root, 'missing `version: v1`');
    if (!sawTables) this.report(root, 'missing `tables:`');
    return this.result(strict, tables);
  }

  private result(strict: boolean, tables: Map<string, TableRules>): TransformConfig {
    return { file: this.file, strict, tables };
  }

  private tables(node: Node | null, keyNode: Node, out: Map<string, TableRules>): void {
    if (node === null || (isScalar(node) && node.value === null)) return;
    if (!isMap(node)) {
      this.report(node, 'tables must be a mapping of schema.table to column rules');
      return;
    }
    for (const pair of node.items) {
      const tableNode = pair.key as Node;
      const key = this.keyName(pair.key);
      const parsed = key === undefined ? undefined : parseTableName(key);
      if (parsed === undefined) {
        this.report(
          tableNode ?? keyNode,
          `table ${JSON.stringify(key ?? '')} must be written schema.table, e.g. public.users`,
        );
        continue;
      }
      const id = tableKey(parsed.schema, parsed.name);
      const display = displayTable(parsed.schema, parsed.name);
      if (out.has(id)) {
        this.report(tableNode, `table ${display} is listed twice`);
        continue;
      }
      const rules = this.columns(this.resolve(pair.value), tableNode, display);
      out.set(id, { ...parsed, display, columns: rules, rowOrder: this.rowOrder(display, rules) });
    }
  }

  private columns(node: Node | null, tableNode: Node, display: string): Map<string, ColumnRule> {
    const rules = new Map<string, ColumnRule>();
    if (isMap(node) && node.items.length === 0) return rules;
    if (!isMap(node)) {
      this.report(
        node === null || isEmpty(node) ? tableNode : node,
        `table ${display} must map column names to transforms, e.g. email: FakeEmail`,
      );
      return rules;
    }
    for (const pair of node.items) {
      const column = this.keyName(pair.key);
      if (column === undefined || column === '') {
        this.report(pair.key as Node, 'a column name must be a non-empty string');
        continue;
      }
      const rule = this.rule(this.resolve(pair.value), pair.key as Node, `${display}.${column}`, false);
      if (rule) rules.set(column, rule);
    }
    return rules;
  }

  private rule(node: Node | null, keyNode: Node, what: string, nested: boolean): ColumnRule | undefined {
    const at: Node = node === null || isEmpty(node) ? keyNode : node;
    const location = this.location(at.range?.[0] ?? 0);
    // YAML reads a bare Null as null; the transform type is meant.
    const shortType = !isScalar(node)
      ? undefined
      : typeof node.value === 'string'
        ? node.value
        : node.value === null && node.source === 'Null'
          ? 'Null'
          : undefined;
    if (node !== null && shortType !== undefined) {
      const def = this.typeDef(shortType, node);
      if (!def) return undefined;
      const required = Object.entries(def.params).filter(([, spec]) => spec.required);
      if (required.length > 0) {
        this.report(
          node,
          `${shortType} needs ${required.map(([n]) => n).join(', ')}; write ${what} as a mapping with type: ${shortType}`,
        );
        return undefined;
      }
      if (shortType === 'Json') {
        this.report(node, `Json needs paths; write ${what} as a mapping with type: Json and paths:`);
        return undefined;
      }
      const params = Object.fromEntries(Object.entries(def.params).map(([n, spec]) => [n, spec.fallback]));
      return this.finish(shortType, params, [], node, nested, location);
    }
    if (!isMap(node)) {
      const hint = isScalar(node) && node.value === null && !isEmpty(node) ? ' (for NULL write Null)' : '';
      this.report(at, `${what}: expected a transform type (e.g. FakeEmail) or a mapping with a type${hint}`);
      return undefined;
    }
    const typePair = node.items.find((pair) => this.keyName(pair.key) === 'type');
    const typeNode = this.resolve(typePair?.value);
    if (!isScalar(typeNode) || typeof typeNode.value !== 'string') {
      this.report(typeNode ?? node, `${what}: missing type (e.g. type: FakeEmail)`);
      return undefined;
    }
    const type = typeNode.value;
    const def = this.typeDef(type, typeNode);
    if (!def) return undefined;
    const params: Record<string, unknown> = {};
    let paths: ColumnRule['paths'] = [];
    let complete = true;
    for (const pair of node.items) {
      const name = this.keyName(pair.key);
      if (name === 'type') continue;
      const value = this.resolve(pair.value);
      if (type === 'Json' && name === 'paths') {
        paths = this.paths(value, pair.key as Node, what);
        continue;
      }
      const spec = name === undefined ? undefined : def.params[name];
      if (spec === undefined) {
        const known = Object.keys(def.params);
        if (type === 'Json') known.push('paths');
        this.report(
          pair.key as Node,
          `unknown parameter ${JSON.stringify(name ?? '')} for ${type}; ` +
            (known.length
              ? `it takes ${known.join(', ')}${suggest(name ?? '', known)}`
              : `${type} takes no parameters`),
        );
        complete = false;
        continue;
      }
      const parsed = value === null ? { ok: false as const, reason: 'needs a value' } : spec.parse(value);
      if (parsed.ok) params[name as string] = parsed.value;
      else {
        this.report(value ?? (pair.key as Node), `${type} parameter ${name}: ${parsed.reason}`);
        complete = false;
      }
    }
    for (const [name, spec] of Object.entries(def.params)) {
      if (name in params) continue;
      if (spec.required && !node.items.some((pair) => this.keyName(pair.key) === name)) {
        this.report(node, `${type} needs parameter ${name}`);
        complete = false;
      }
      params[name] = spec.fallback;
    }
    if (type === 'Json' && !node.items.some((pair) => this.keyName(pair.key) === 'paths')) {
      this.report(node, 'Json needs paths: a mapping of JSON paths to transforms, e.g. $.email: FakeEmail');
      complete = false;
    }
    if (!complete) return undefined;
    const problem = def.check?.(params);
    if (problem !== undefined) {
      this.report(node, `${type}: ${problem}`);
      return undefined;
    }
    return this.finish(type, params, paths, node, nested, location);
  }

  private finish(
    type: string,
    params: Record<string, unknown>,
    paths: ColumnRule['paths'],
    node: Node,
    nested: boolean,
    location: string,
  ): ColumnRule | undefined {
    const def = CATALOGUE[type];
    if (!def) return undefined;
    if (nested && def.stage !== 'value' && def.stage !== 'null') {
      this.report(
        node,
        `${type} cannot be used inside a JSON path; use a value transform such as FakeEmail or Null`,
      );
      return undefined;
    }
    const rule: ColumnRule = {
      type,
      params,
      paths,
      stage: def.stage,
      fields: def.fields?.(params) ?? [],
      location,
    };
    this.ruleOffsets.set(rule, node.range?.[0] ?? 0);
    return rule;
  }

  private typeDef(type: string, node: Node) {
    const def = CATALOGUE[type];
    if (!def) this.report(node, `unknown transform type ${type}${suggest(type, TYPE_NAMES)}`);
    return def;
  }

  private paths(node: Node | null, keyNode: Node, what: string): ColumnRule['paths'] {
    if (!isMap(node) || node.items.length === 0) {
      this.report(
        node ?? keyNode,
        'Json paths must be a mapping of JSON paths to transforms, e.g. $.email: FakeEmail',
      );
      return [];
    }
    const out: { path: string; segments: ReturnType<typeof compilePath>; rule: RuleSpec }[] = [];
    for (const pair of node.items) {
      const path = this.keyName(pair.key);
      try {
        const segments = compilePath(path ?? '');
        const rule = this.rule(this.resolve(pair.value), pair.key as Node, `${what} ${path}`, true);
        if (rule) out.push({ path: path ?? '', segments, rule });
      } catch (error) {
        this.report(pair.key as Node, `JSON path ${JSON.stringify(path ?? '')}: ${(error as Error).message}`);
      }
    }
    return out;
  }

  /** Orders row-stage columns so each comes after the row-stage columns it reads; a cycle is a mistake. */
  private rowOrder(display: string, rules: Map<string, ColumnRule>): string[] {
    const order: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (column: string, trail: string[]): void => {
      const rule = rules.get(column);
      if (rule?.stage !== 'row' || state.get(column) === 'done') return;
      if (state.get(column) === 'visiting') {
        const cycle = [...trail.slice(trail.indexOf(column)), column].join(' -> ');
        const offset = this.ruleOffsets.get(rule) ?? 0;
        this.problems.push({
          offset,
          reason: `${display}: the templates of ${cycle} read each other in a cycle`,
        });
        return;
      }
      state.set(column, 'visiting');
      for (const field of rule.fields) if (field !== column) visit(field, [...trail, column]);
      state.set(column, 'done');
      order.push(column);
    };
    for (const column of rules.keys()) visit(column, []);
    return order;
  }

  problemsText(): string[] {
    return [...this.problems]
      .sort((a, b) => a.offset - b.offset)
      .map((problem) => `${this.location(problem.offset)}: ${problem.reason}`);
  }
}

/** Parses and validates transforms.yml text; throws ConfigError listing every problem as `file:line:column: reason`. */
export function parseTransforms(text: string, fileName: string): TransformConfig {
  const validator = new Validator(text, fileName);
  const config = validator.validate();
  if (validator.problems.length > 0) throw new ConfigError(validator.problemsText());
  return config;
}

/** Reads and validates the transforms file; a missing file gives the guide's message. */
export function loadTransformsFile(path: string): TransformConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError([`Required config file ${path} not found`]);
    throw new ConfigError([
      `Cannot read config file ${path} (${code ?? 'error'}); check that it is a readable file`,
    ]);
  }
  return parseTransforms(text, path);
}
