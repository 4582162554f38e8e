/**
 * Splits a plain-format pg_dump, fed one line at a time, into SQL statements, psql meta-commands and the data
 * lines of `COPY ... FROM stdin` blocks. Pure: the caller reads the file and decides what each item means.
 *
 * Statements end at a `;` outside quotes, dollar quotes, comments and parentheses, as psql splits them, so function
 * bodies (`AS $_$ ... ; ... $_$`), rules with several actions and string literals spanning lines stay whole.
 */
import { isWordPart } from './sql-lexer.js';

export type DumpItem =
  | { kind: 'statement'; sql: string; line: number; offset: number }
  | { kind: 'meta'; text: string; line: number }
  /** One row of a COPY block, raw (line terminator removed), `line` being where it starts. */
  | { kind: 'copy-row'; data: Buffer; line: number }
  | { kind: 'copy-end'; line: number };

/** A malformed dump; `line` is where the offending construct starts. */
export class DumpSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

type LexState =
  | { mode: 'normal' }
  | { mode: 'single'; escapes: boolean }
  | { mode: 'double' }
  | { mode: 'dollar'; tag: string }
  | { mode: 'block'; depth: number };

const NORMAL: LexState = { mode: 'normal' };
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const COPY_FROM_STDIN = /^copy\s[\s\S]*\sfrom\s+stdin\s*$/i;
const BACKSLASH = 0x5c;
/** The splitter follows this setting itself: it changes how the statements after it split. */
const STANDARD_STRINGS = /^set\s+(?:session\s+)?standard_conforming_strings\s*(?:=|to)\s*'?(on|off)'?$/i;

/** Splits SQL text, fed line by line, into statements (without their terminating `;`). */
export class StatementSplitter {
  /** standard_conforming_strings: when off, backslashes escape inside every '...' string. */
  standardConformingStrings = true;
  private lex: LexState = NORMAL;
  private depth = 0;
  private parts: string[] = [];
  private started = false;
  private startLine = 0;
  private startOffset = 0;

  get inStatement(): boolean {
    return this.started || this.lex.mode !== 'normal';
  }

  /** `text` is one line without its terminator; `offset` the byte offset of the line in the input. */
  push(text: string, line: number, offset: number): DumpItem[] {
    const items: DumpItem[] = [];
    if (!this.inStatement && /^\s*\\/.test(text)) {
      items.push({ kind: 'meta', text: text.trim(), line });
      return items;
    }
    let segment = this.started ? 0 : -1;
    let i = 0;
    const n = text.length;
    while (i < n) {
      const lex = this.lex;
      if (lex.mode === 'single') {
        const c = text[i];
        if (lex.escapes && c === '\\') {
          i += 2;
        } else if (c === "'") {
          if (text[i + 1] === "'") {
            i += 2;
          } else {
            this.lex = NORMAL;
            i += 1;
          }
        } else {
          i += 1;
        }
        continue;
      }
      if (lex.mode === 'double') {
        const close = text.indexOf('"', i);
        if (close < 0) {
          i = n;
        } else if (text[close + 1] === '"') {
          i = close + 2;
        } else {
          this.lex = NORMAL;
          i = close + 1;
        }
        continue;
      }
      if (lex.mode === 'dollar') {
        const close = text.indexOf(lex.tag, i);
        if (close < 0) {
          i = n;
        } else {
          this.lex = NORMAL;
          i = close + lex.tag.length;
        }
        continue;
      }
      if (lex.mode === 'block') {
        const open = text.indexOf('/*', i);
        const close = text.indexOf('*/', i);
        if (close < 0 && open < 0) {
          i = n;
        } else if (open >= 0 && (close < 0 || open < close)) {
          lex.depth += 1;
          i = open + 2;
        } else {
          lex.depth -= 1;
          i = close + 2;
          if (lex.depth === 0) this.lex = NORMAL;
        }
        continue;
      }
      const c = text[i]!;
      if (c === ' ' || c === '\t' || c === '\r' || c === '\f') {
        i += 1;
        continue;
      }
      if (c === '-' && text[i + 1] === '-') break;
      if (c === '/' && text[i + 1] === '*') {
        this.lex = { mode: 'block', depth: 1 };
        i += 2;
        continue;
      }
      if (!this.started) {
        this.started = true;
        this.startLine = line;
        this.startOffset = offset;
        segment = i;
      }
      if (c === "'") {
        const prefixed = (text[i - 1] === 'E' || text[i - 1] === 'e') && !isWordPart(text[i - 2]);
        this.lex = { mode: 'single', escapes: prefixed || !this.standardConformingStrings };
        i += 1;
      } else if (c === '"') {
        this.lex = { mode: 'double' };
        i += 1;
      } else if (c === '$') {
        DOLLAR_TAG.lastIndex = i;
        const tag = isWordPart(text[i - 1]) ? null : DOLLAR_TAG.exec(text);
        if (tag) {
          this.lex = { mode: 'dollar', tag: tag[0] };
          i += tag[0].length;
        } else {
          i += 1;
        }
      } else if (c === '(') {
        this.depth += 1;
        i += 1;
      } else if (c === ')') {
        if (this.depth > 0) this.depth -= 1;
        i += 1;
      } else if (c === ';' && this.depth === 0) {
        this.parts.push(text.slice(segment, i));
        const sql = this.parts.join('\n').trim();
        const setting = STANDARD_STRINGS.exec(sql);
        if (setting) this.standardConformingStrings = setting[1]!.toLowerCase() !== 'off';
        items.push({ kind: 'statement', sql, line: this.startLine, offset: this.startOffset });
        this.parts = [];
        this.started = false;
        segment = -1;
        i += 1;
      } else {
        i += 1;
      }
    }
    if (this.started) this.parts.push(segment >= 0 ? text.slice(segment) : text);
    return items;
  }

  /** At the end of the input: a statement still open is an error. */
  finish(): void {
    if (!this.inStatement) return;
    const what =
      this.lex.mode === 'dollar'
        ? `its dollar-quoted string ${this.lex.tag} is never closed`
        : this.lex.mode === 'single'
          ? 'a quoted string is never closed'
          : this.lex.mode === 'double'
            ? 'a quoted identifier is never closed'
            : this.lex.mode === 'block'
              ? 'a /* comment is never closed'
              : 'no ";" ends it';
    throw new DumpSyntaxError(
      `the statement starting here does not end before the end of the input: ${what}`,
      this.startLine,
    );
  }
}

interface CopyBlock {
  line: number;
  crlf: boolean;
  /** A row whose last character was an escaping backslash: the line terminator is part of its data. */
  pending: Buffer[] | undefined;
  pendingLine: number;
}

/** Splits a whole dump, fed as raw lines (Buffers without the '\n'), into items. */
export class DumpTokenizer {
  private readonly statements = new StatementSplitter();
  private copy: CopyBlock | undefined;
  private lineNumber: number;

  /**
   * `firstLine` numbers the first line fed and `standardConformingStrings` is the setting in force there, for a
   * reader that starts in the middle of a dump.
   */
  constructor(firstLine = 1, standardConformingStrings = true) {
    this.lineNumber = firstLine - 1;
    this.statements.standardConformingStrings = standardConformingStrings;
  }

  get standardConformingStrings(): boolean {
    return this.statements.standardConformingStrings;
  }

  get line(): number {
    return this.lineNumber;
  }

  push(raw: Buffer, offset: number): DumpItem[] {
    this.lineNumber += 1;
    const copy = this.copy;
    if (copy) {
      const item = this.copyLine(copy, raw);
      return item ? [item] : [];
    }
    const crlf = raw.length > 0 && raw[raw.length - 1] === 0x0d;
    const text = raw.toString('utf8', 0, crlf ? raw.length - 1 : raw.length);
    const items = this.statements.push(text, this.lineNumber, offset);
    const last = items[items.length - 1];
    if (last?.kind === 'statement' && COPY_FROM_STDIN.test(last.sql) && !this.statements.inStatement) {
      this.copy = { line: this.lineNumber, crlf, pending: undefined, pendingLine: 0 };
    }
    return items;
  }

  /** At the end of the input: an open COPY block or statement is an error. */
  finish(): void {
    if (this.copy) {
      throw new DumpSyntaxError(
        'the COPY block starting here has no end-of-data line "\\." (is the dump cut off?)',
        this.copy.line,
      );
    }
    this.statements.finish();
  }

  private copyLine(copy: CopyBlock, raw: Buffer): DumpItem | undefined {
    let data = copy.crlf && raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.subarray(0, -1) : raw;
    let line = this.lineNumber;
    if (copy.pending) {
      copy.pending.push(Buffer.from('\n'), data);
      data = Buffer.concat(copy.pending);
      line = copy.pendingLine;
      copy.pending = undefined;
    } else if (data.length === 2 && data[0] === BACKSLASH && data[1] === 0x2e) {
      this.copy = undefined;
      return { kind: 'copy-end', line };
    }
    if (data.length > 0 && data[data.length - 1] === BACKSLASH && endsWithEscapingBackslash(data)) {
      copy.pending = [data];
      copy.pendingLine = line;
      return undefined;
    }
    return { kind: 'copy-row', data, line };
  }
}

/** An odd number of trailing backslashes: the last one escapes the line terminator that follows. */
function endsWithEscapingBackslash(data: Buffer): boolean {
  let count = 0;
  for (let i = data.length - 1; i >= 0 && data[i] === BACKSLASH; i -= 1) count += 1;
  return count % 2 === 1;
}
