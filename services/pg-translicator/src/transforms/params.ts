import { isScalar, type Node } from 'yaml';
import { compileTemplate, TemplateSyntaxError, type CompiledTemplate } from './template.js';

/** The result of reading one parameter: its value, or why the YAML node is not acceptable. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** One parameter of a transform type: how to read it from YAML and what it is when absent. */
export interface ParamSpec<T> {
  readonly required: boolean;
  readonly fallback: T;
  parse(node: Node): Parsed<T>;
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(reason: string): Parsed<T> => ({ ok: false, reason });

function spec<T>(required: boolean, fallback: T, parse: (node: Node) => Parsed<T>): ParamSpec<T> {
  return { required, fallback, parse };
}

function scalarValue(node: Node): unknown {
  return isScalar(node) ? node.value : undefined;
}

function readNumber(node: Node, whole: boolean, min: number, max: number): Parsed<number> {
  const value = scalarValue(node);
  if (typeof value === 'string') {
    const hint = /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? ` (write ${value.trim()} without quotes)` : '';
    return bad(`must be a number, not a string${hint}`);
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) return bad('must be a number');
  if (whole && !Number.isInteger(value)) return bad('must be a whole number');
  if (value < min || value > max) return bad(`must be between ${min} and ${max}`);
  return ok(value);
}

/** A whole number in [min, max]; required when there is no default. */
export function int(min: number, max: number, fallback?: number): ParamSpec<number> {
  return spec(fallback === undefined, fallback ?? 0, (node) => readNumber(node, true, min, max));
}

export function optionalInt(min: number, max: number): ParamSpec<number | undefined> {
  return spec<number | undefined>(false, undefined, (node) => readNumber(node, true, min, max));
}

export function optionalNumber(min: number, max: number): ParamSpec<number | undefined> {
  return spec<number | undefined>(false, undefined, (node) => readNumber(node, false, min, max));
}

export function bool(fallback: boolean): ParamSpec<boolean> {
  return spec(false, fallback, (node) => {
    const value = scalarValue(node);
    return typeof value === 'boolean' ? ok(value) : bad('must be true or false');
  });
}

export function text(options: { fallback?: string; optional?: boolean; nonEmpty?: boolean } = {}) {
  return spec<string>(options.fallback === undefined && !options.optional, options.fallback ?? '', (node) => {
    const value = scalarValue(node);
    if (typeof value !== 'string') return bad('must be a string');
    if (options.nonEmpty && value === '') return bad('must not be empty');
    return ok(value);
  });
}

export function optionalText(check?: (value: string) => string | undefined): ParamSpec<string | undefined> {
  return spec<string | undefined>(false, undefined, (node) => {
    const value = scalarValue(node);
    if (typeof value !== 'string' || value === '') return bad('must be a non-empty string');
    const problem = check?.(value);
    return problem === undefined ? ok(value) : bad(problem);
  });
}

/** One character, e.g. the masking character. */
export function char(fallback: string): ParamSpec<string> {
  return spec(false, fallback, (node) => {
    const value = scalarValue(node);
    return typeof value === 'string' && Array.from(value).length === 1
      ? ok(value)
      : bad('must be one character');
  });
}

/** One of a fixed set of words, matched without regard to case; the value is the canonical spelling. */
export function oneOf(values: readonly string[], fallback: string): ParamSpec<string> {
  return spec(false, fallback, (node) => {
    const value = scalarValue(node);
    const found =
      typeof value === 'string' ? values.find((v) => v.toLowerCase() === value.toLowerCase()) : undefined;
    return found === undefined ? bad(`must be one of ${values.join(', ')}`) : ok(found);
  });
}

/** A string, number or boolean written as the column's text (Constant's `value`). */
export function scalarText(): ParamSpec<string> {
  return spec(true, '', (node) => {
    const value = scalarValue(node);
    if (value === null || value === undefined)
      return bad('must be a string, number or boolean (for NULL use type Null)');
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      return ok(isScalar(node) && typeof value === 'number' && node.source ? node.source : String(value));
    }
    return bad('must be a string, number or boolean');
  });
}

export function template(fallback?: string): ParamSpec<CompiledTemplate> {
  const parse = (node: Node): Parsed<CompiledTemplate> => {
    const value = scalarValue(node);
    if (typeof value !== 'string') return bad('must be a template string');
    try {
      return ok(compileTemplate(value));
    } catch (error) {
      if (error instanceof TemplateSyntaxError) return bad(`template does not parse: ${error.message}`);
      throw error;
    }
  };
  return spec(fallback === undefined, compileTemplate(fallback ?? ''), parse);
}

export interface CompiledRegex {
  readonly regex: RegExp;
}

/**
 * A regular expression in the guide's Go (RE2) syntax, compiled to a JavaScript RegExp: `(?P<name>` becomes
 * `(?<name>` and leading inline flags `(?i)`, `(?s)`, `(?m)` become RegExp flags.
 */
export function regex(): ParamSpec<CompiledRegex> {
  return spec(true, { regex: /(?:)/g }, (node) => {
    const value = scalarValue(node);
    if (typeof value !== 'string' || value === '') return bad('must be a non-empty regular expression');
    let source = value.replace(/\(\?P</g, '(?<');
    let flags = 'g';
    const inline = source.match(/^\(\?([ims]+)\)/);
    if (inline) {
      flags += [...new Set(inline[1])].join('');
      source = source.slice(inline[0].length);
    }
    try {
      return ok({ regex: new RegExp(source, flags) });
    } catch (error) {
      return bad(`does not compile: ${(error as Error).message}`);
    }
  });
}
