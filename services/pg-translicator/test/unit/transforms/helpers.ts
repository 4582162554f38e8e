import { stringify } from 'yaml';
import {
  createTransformer,
  parseTransforms,
  type TransformValue,
  type Transformer,
} from '../../../src/transforms/index.js';

export const SECRET = 'unit-test-secret';
export const TABLE = { schema: 'public', name: 't' };

export type Rule = string | Record<string, unknown>;

/** A transformer for one table `public.t` with the given column rules. */
export function transformerFor(
  rules: Record<string, Rule>,
  secret: string | undefined = SECRET,
  extra: Record<string, unknown> = {},
): Transformer {
  const config = parseTransforms(
    stringify({ version: 'v1', ...extra, tables: { 'public.t': rules } }),
    'test.yml',
  );
  return createTransformer(config, { secret });
}

export const text = (value: string): TransformValue => ({ kind: 'text', text: value });
export const NULL: TransformValue = { kind: 'null' };
export const UNCHANGED: TransformValue = { kind: 'unchanged' };

/** The text a value became, or null/unchanged. */
export function show(value: TransformValue | undefined): string | null | undefined {
  if (value === undefined || value.kind === 'unchanged') return undefined;
  return value.kind === 'null' ? null : value.text;
}

/** Transforms one value of column `c` (of `typeName`) with `rule`. */
export function one(
  rule: Rule,
  value: string | null,
  typeName = 'text',
  secret: string | undefined = SECRET,
): string | null | undefined {
  const transformer = transformerFor({ c: rule }, secret);
  return show(
    transformer.transformRow(TABLE, [{ name: 'c', typeName }], [value === null ? NULL : text(value)])[0],
  );
}

/** A function transforming many values of one column with one transformer. */
export function column(rule: Rule, typeName = 'text', secret: string | undefined = SECRET) {
  const transformer = transformerFor({ c: rule }, secret);
  const columns = [{ name: 'c', typeName }];
  return (value: string): string | null | undefined =>
    show(transformer.transformRow(TABLE, columns, [text(value)])[0]);
}

/** Runs `fn` and returns the problems of the ConfigError it throws (or fails). */
export function configProblems(yamlText: string, file = 'transforms.yml'): string[] {
  try {
    parseTransforms(yamlText, file);
  } catch (error) {
    const problems = (error as { problems?: string[] }).problems;
    if (problems) return problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}
