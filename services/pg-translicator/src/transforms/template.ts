/**
 * The Go text/template subset of the guide's Template transform and of password `cleartext`: `{{.column}}`,
 * pipelines (`{{.email | before "@" | lower}}`), function calls, parentheses, `if`/`else if`/`else`/`end`,
 * comments and `{{-`/`-}}` whitespace trimming.
 */

/** A column value as templates see it: text, a boolean for boolean columns, null for NULL. */
export type TemplateValue = string | number | boolean | null;

export class TemplateSyntaxError extends Error {
  constructor(
    reason: string,
    readonly offset: number,
  ) {
    super(`${reason} at character ${offset + 1} of the template`);
  }
}

export interface CompiledTemplate {
  readonly source: string;
  /** Every column the template reads. */
  readonly fields: readonly string[];
  render(lookup: (column: string) => TemplateValue): string;
}

type Operand =
  | { t: 'field'; name: string }
  | { t: 'dot' }
  | { t: 'literal'; value: TemplateValue }
  | { t: 'fn'; name: string }
  | { t: 'pipe'; pipe: Pipeline };
type Command = Operand[];
type Pipeline = Command[];
type Node =
  | { t: 'text'; text: string }
  | { t: 'print'; pipe: Pipeline }
  | { t: 'if'; branches: { cond: Pipeline; body: Node[] }[]; otherwise: Node[] };

interface FunctionDef {
  min: number;
  max: number;
  call(args: TemplateValue[], lookup: (column: string) => TemplateValue): TemplateValue;
}

export function toText(value: TemplateValue): string {
  if (value === null) return '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return String(value);
}

function truthy(value: TemplateValue): boolean {
  return value !== null && value !== false && value !== '' && value !== 0;
}

export function slugify(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

const text1 = (fn: (s: string) => TemplateValue): FunctionDef => ({
  min: 1,
  max: 1,
  call: ([s]) => fn(toText(s ?? null)),
});

const FUNCTIONS: Record<string, FunctionDef> = {
  lower: text1((s) => s.toLowerCase()),
  upper: text1((s) => s.toUpperCase()),
  title: text1((s) =>
    s.toLowerCase().replace(/(^|[\s-])(\p{L})/gu, (_, sep: string, c: string) => sep + c.toUpperCase()),
  ),
  trim: text1((s) => s.trim()),
  slugify: text1(slugify),
  year: text1((s) => s.match(/^\s*(\d{4,})-/)?.[1] ?? ''),
  len: text1((s) => Array.from(s).length),
  before: {
    min: 2,
    max: 2,
    call: ([sep, s]) => {
      const text = toText(s ?? null);
      const i = text.indexOf(toText(sep ?? null));
      return i < 0 ? text : text.slice(0, i);
    },
  },
  after: {
    min: 2,
    max: 2,
    call: ([sep, s]) => {
      const text = toText(s ?? null);
      const separator = toText(sep ?? null);
      const i = text.indexOf(separator);
      return i < 0 ? '' : text.slice(i + separator.length);
    },
  },
  replace: {
    min: 3,
    max: 3,
    call: ([from, to, s]) =>
      toText(s ?? null)
        .split(toText(from ?? null))
        .join(toText(to ?? null)),
  },
  truncate: {
    min: 2,
    max: 2,
    call: ([n, s]) =>
      Array.from(toText(s ?? null))
        .slice(0, Math.max(0, Math.trunc(Number(n))))
        .join(''),
  },
  default: {
    min: 2,
    max: 2,
    call: ([fallback, s]) => (truthy(s ?? null) ? (s ?? null) : (fallback ?? null)),
  },
  eq: { min: 2, max: 2, call: ([a, b]) => toText(a ?? null) === toText(b ?? null) },
  ne: { min: 2, max: 2, call: ([a, b]) => toText(a ?? null) !== toText(b ?? null) },
  not: { min: 1, max: 1, call: ([a]) => !truthy(a ?? null) },
  and: {
    min: 1,
    max: Infinity,
    call: (args) => args.find((a) => !truthy(a)) ?? args[args.length - 1] ?? null,
  },
  or: {
    min: 1,
    max: Infinity,
    call: (args) => args.find((a) => truthy(a)) ?? args[args.length - 1] ?? null,
  },
  index: { min: 2, max: 2, call: ([, name], lookup) => lookup(toText(name ?? null)) },
};

export const TEMPLATE_FUNCTIONS = Object.keys(FUNCTIONS);

type Token =
  | { k: 'field'; name: string; at: number }
  | { k: 'dot'; at: number }
  | { k: 'literal'; value: TemplateValue; at: number }
  | { k: 'ident'; name: string; at: number }
  | { k: 'pipe' | 'open' | 'close'; at: number };

/** Tokenizes one action starting after `{{`; returns the tokens and the offset just after `}}`. */
function lexAction(src: string, start: number): { tokens: Token[]; end: number; trimRight: boolean } {
  const tokens: Token[] = [];
  let pos = start;
  for (;;) {
    while (pos < src.length && /\s/.test(src[pos] ?? '')) pos++;
    if (pos >= src.length) throw new TemplateSyntaxError('unclosed action: missing }}', start);
    if (src.startsWith('-}}', pos) && /\s/.test(src[pos - 1] ?? '')) {
      return { tokens, end: pos + 3, trimRight: true };
    }
    if (src.startsWith('}}', pos)) return { tokens, end: pos + 2, trimRight: false };
    const ch = src[pos] ?? '';
    const at = pos;
    if (ch === '|') {
      tokens.push({ k: 'pipe', at });
      pos++;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ k: ch === '(' ? 'open' : 'close', at });
      pos++;
    } else if (ch === '.') {
      const m = src.slice(pos + 1).match(/^[\p{L}_][\p{L}\p{N}_]*/u);
      if (m) {
        tokens.push({ k: 'field', name: m[0], at });
        pos += 1 + m[0].length;
      } else {
        tokens.push({ k: 'dot', at });
        pos++;
      }
    } else if (ch === '"') {
      const m = src.slice(pos).match(/^"(?:[^"\\\n]|\\.)*"/);
      if (!m) throw new TemplateSyntaxError('unterminated string', at);
      let value: string;
      try {
        value = JSON.parse(m[0]) as string;
      } catch {
        throw new TemplateSyntaxError('unsupported escape in string', at);
      }
      tokens.push({ k: 'literal', value, at });
      pos += m[0].length;
    } else if (ch === '`') {
      const close = src.indexOf('`', pos + 1);
      if (close < 0) throw new TemplateSyntaxError('unterminated raw string', at);
      tokens.push({ k: 'literal', value: src.slice(pos + 1, close), at });
      pos = close + 1;
    } else if (/[-\d]/.test(ch)) {
      const m = src.slice(pos).match(/^-?\d+(?:\.\d+)?/);
      if (!m) throw new TemplateSyntaxError(`unexpected ${JSON.stringify(ch)}`, at);
      tokens.push({ k: 'literal', value: Number(m[0]), at });
      pos += m[0].length;
    } else {
      const m = src.slice(pos).match(/^[A-Za-z_][A-Za-z0-9_]*/);
      if (!m) throw new TemplateSyntaxError(`unexpected ${JSON.stringify(ch)}`, at);
      const word = m[0];
      if (word === 'true' || word === 'false') tokens.push({ k: 'literal', value: word === 'true', at });
      else if (word === 'nil') tokens.push({ k: 'literal', value: null, at });
      else tokens.push({ k: 'ident', name: word, at });
      pos += word.length;
    }
  }
}

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block']);

class PipelineParser {
  private pos = 0;
  readonly fields = new Set<string>();

  constructor(
    private readonly tokens: Token[],
    private readonly actionStart: number,
  ) {}

  parseAll(): Pipeline {
    if (this.tokens.length === 0) throw new TemplateSyntaxError('empty action', this.actionStart);
    const pipe = this.pipeline();
    const extra = this.tokens[this.pos];
    if (extra) throw new TemplateSyntaxError('unexpected ")"', extra.at);
    return pipe;
  }

  private pipeline(): Pipeline {
    const commands: Pipeline = [];
    for (;;) {
      const command = this.command(commands.length > 0);
      commands.push(command);
      if (this.tokens[this.pos]?.k !== 'pipe') return commands;
      this.pos++;
    }
  }

  private command(piped: boolean): Command {
    const operands: Command = [];
    const startToken = this.tokens[this.pos];
    const startAt = startToken?.at ?? this.actionStart;
    for (;;) {
      const token = this.tokens[this.pos];
      if (token === undefined || token.k === 'pipe' || token.k === 'close') break;
      this.pos++;
      switch (token.k) {
        case 'field':
          this.fields.add(token.name);
          operands.push({ t: 'field', name: token.name });
          break;
        case 'dot':
          operands.push({ t: 'dot' });
          break;
        case 'literal':
          operands.push({ t: 'literal', value: token.value });
          break;
        case 'ident':
          if (KEYWORDS.has(token.name)) throw new TemplateSyntaxError(`unexpected ${token.name}`, token.at);
          if (!FUNCTIONS[token.name]) {
            throw new TemplateSyntaxError(
              `unknown function ${token.name} (known: ${TEMPLATE_FUNCTIONS.join(', ')})`,
              token.at,
            );
          }
          if (operands.length > 0) {
            throw new TemplateSyntaxError(`function ${token.name} must come first in a command`, token.at);
          }
          operands.push({ t: 'fn', name: token.name });
          break;
        case 'open': {
          const pipe = this.pipeline();
          if (this.tokens[this.pos]?.k !== 'close') throw new TemplateSyntaxError('missing ")"', token.at);
          this.pos++;
          operands.push({ t: 'pipe', pipe });
          break;
        }
      }
    }
    const head = operands[0];
    if (head === undefined) throw new TemplateSyntaxError('missing value', startAt);
    if (head.t === 'fn') {
      const def = FUNCTIONS[head.name] as FunctionDef;
      const argc = operands.length - 1 + (piped ? 1 : 0);
      if (argc < def.min || argc > def.max) {
        const wanted = def.max === Infinity ? `at least ${def.min}` : String(def.min);
        throw new TemplateSyntaxError(`${head.name} takes ${wanted} argument(s), got ${argc}`, startAt);
      }
      if (head.name === 'index') {
        const first = piped ? undefined : operands[1];
        const name = piped ? operands[1] : operands[2];
        if ((!piped && first?.t !== 'dot') || name?.t !== 'literal' || typeof name.value !== 'string') {
          throw new TemplateSyntaxError('use index as (index . "column name")', startAt);
        }
        this.fields.add(name.value);
      }
    } else {
      if (operands.length > 1) throw new TemplateSyntaxError('too many values; missing a function?', startAt);
      if (piped) throw new TemplateSyntaxError('only a function can follow |', startAt);
      if (head.t === 'dot') throw new TemplateSyntaxError('. is only allowed as (index . "column")', startAt);
    }
    return operands;
  }
}

function evalPipeline(pipe: Pipeline, lookup: (column: string) => TemplateValue): TemplateValue {
  let value: TemplateValue | undefined;
  for (const command of pipe) {
    const [head, ...rest] = command;
    if (head?.t === 'fn') {
      const args = rest.map((operand) => evalOperand(operand, lookup));
      if (value !== undefined) args.push(value);
      value = (FUNCTIONS[head.name] as FunctionDef).call(args, lookup);
    } else if (head) {
      value = evalOperand(head, lookup);
    }
  }
  return value ?? null;
}

function evalOperand(operand: Operand, lookup: (column: string) => TemplateValue): TemplateValue {
  switch (operand.t) {
    case 'field':
      return lookup(operand.name);
    case 'literal':
      return operand.value;
    case 'pipe':
      return evalPipeline(operand.pipe, lookup);
    default:
      return null;
  }
}

function renderNodes(nodes: Node[], lookup: (column: string) => TemplateValue): string {
  let out = '';
  for (const node of nodes) {
    if (node.t === 'text') out += node.text;
    else if (node.t === 'print') out += toText(evalPipeline(node.pipe, lookup));
    else {
      const branch = node.branches.find((b) => truthy(evalPipeline(b.cond, lookup)));
      out += renderNodes(branch ? branch.body : node.otherwise, lookup);
    }
  }
  return out;
}

/** Parses a template; throws TemplateSyntaxError with the offset of the mistake. */
export function compileTemplate(source: string): CompiledTemplate {
  const fields = new Set<string>();
  type Frame = { node: Extract<Node, { t: 'if' }>; body: Node[]; inElse: boolean; at: number };
  const root: Node[] = [];
  const stack: Frame[] = [];
  let body = root;
  let pos = 0;
  let trimNext = false;

  const addText = (text: string) => {
    if (text) body.push({ t: 'text', text });
  };

  while (pos < source.length) {
    const open = source.indexOf('{{', pos);
    let text = source.slice(pos, open < 0 ? source.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      addText(text);
      break;
    }
    let start = open + 2;
    if (
      source.startsWith('- ', start) ||
      source.startsWith('-\t', start) ||
      source.startsWith('-\n', start)
    ) {
      text = text.replace(/\s+$/, '');
      start++;
    }
    addText(text);
    const comment = source.slice(start).match(/^\s*\/\*[\s\S]*?\*\/\s*(-?)\}\}/);
    if (comment) {
      trimNext = comment[1] === '-';
      pos = start + comment[0].length;
      continue;
    }
    const { tokens, end, trimRight } = lexAction(source, start);
    trimNext = trimRight;
    pos = end;
    const first = tokens[0];
    const keyword = first?.k === 'ident' && KEYWORDS.has(first.name) ? first.name : undefined;
    const parsePipe = (from: number, at: number) => {
      const parser = new PipelineParser(tokens.slice(from), at);
      const pipe = parser.parseAll();
      for (const f of parser.fields) fields.add(f);
      return pipe;
    };
    if (keyword === undefined) {
      body.push({ t: 'print', pipe: parsePipe(0, open) });
    } else if (keyword === 'if') {
      const node: Node = { t: 'if', branches: [], otherwise: [] };
      const cond = parsePipe(1, open);
      const branchBody: Node[] = [];
      node.branches.push({ cond, body: branchBody });
      body.push(node);
      stack.push({ node, body, inElse: false, at: open });
      body = branchBody;
    } else if (keyword === 'else') {
      const frame = stack[stack.length - 1];
      if (!frame || frame.inElse) throw new TemplateSyntaxError('unexpected else', open);
      const next = tokens[1];
      if (next?.k === 'ident' && next.name === 'if') {
        const branchBody: Node[] = [];
        frame.node.branches.push({ cond: parsePipe(2, open), body: branchBody });
        body = branchBody;
      } else {
        if (tokens.length > 1) throw new TemplateSyntaxError('unexpected words after else', open);
        frame.inElse = true;
        body = frame.node.otherwise;
      }
    } else if (keyword === 'end') {
      const frame = stack.pop();
      if (!frame) throw new TemplateSyntaxError('unexpected end', open);
      if (tokens.length > 1) throw new TemplateSyntaxError('unexpected words after end', open);
      body = frame.body;
    } else {
      throw new TemplateSyntaxError(`${keyword} is not supported (supported: if, else, end)`, open);
    }
  }
  const unclosed = stack.pop();
  if (unclosed) throw new TemplateSyntaxError('if without end', unclosed.at);

  return {
    source,
    fields: [...fields],
    render: (lookup) => renderNodes(root, lookup),
  };
}
