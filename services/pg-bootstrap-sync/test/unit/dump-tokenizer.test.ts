import { expect } from 'chai';
import {
  DumpSyntaxError,
  DumpTokenizer,
  StatementSplitter,
  type DumpItem,
} from '../../src/dump-tokenizer.js';
import { LineSplitter } from '../../src/line-splitter.js';

/** Feeds `text` in chunks of `chunk` bytes through the line splitter and the tokenizer. */
function tokenize(text: string, chunk = 7): DumpItem[] {
  const bytes = Buffer.from(text, 'utf8');
  const splitter = new LineSplitter();
  const tokenizer = new DumpTokenizer();
  const items: DumpItem[] = [];
  let offset = 0;
  const feed = (line: Buffer) => {
    items.push(...tokenizer.push(line, offset));
    offset += line.length + 1;
  };
  for (let i = 0; i < bytes.length; i += chunk)
    for (const line of splitter.push(bytes.subarray(i, i + chunk))) feed(line);
  const rest = splitter.end();
  if (rest) feed(rest);
  tokenizer.finish();
  return items;
}

const statements = (items: DumpItem[]) =>
  items.flatMap((item) => (item.kind === 'statement' ? [item.sql] : []));

describe('dump tokenizer', () => {
  it('keeps a function body in $$ with semicolons whole, and drops comment lines between statements', () => {
    const dump = [
      '--',
      '-- Name: bump(integer); Type: FUNCTION',
      '--',
      '',
      'CREATE FUNCTION public.bump(x integer) RETURNS integer',
      '    LANGUAGE plpgsql',
      '    AS $$',
      'BEGIN',
      "  RAISE NOTICE 'semi; colon';",
      '  RETURN x + 1;',
      'END;',
      '$$;',
      '',
      "SET default_tablespace = '';",
    ].join('\n');
    const items = tokenize(dump);
    expect(statements(items)).to.deep.equal([
      "CREATE FUNCTION public.bump(x integer) RETURNS integer\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n  RAISE NOTICE 'semi; colon';\n  RETURN x + 1;\nEND;\n$$",
      "SET default_tablespace = ''",
    ]);
    expect(items[0]).to.include({ kind: 'statement', line: 5 });
  });

  it('handles dollar quotes with tags, nested other tags, and $ inside identifiers and parameters', () => {
    const sql = [
      'CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $_$ SELECT $$;$$ || $body$;$body$; $_$;',
      'CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN RETURN $q$;$q$; END $body$;',
      'SELECT a$b, $1; SELECT 2;',
    ].join('\n');
    expect(statements(tokenize(sql))).to.deep.equal([
      'CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $_$ SELECT $$;$$ || $body$;$body$; $_$',
      'CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN RETURN $q$;$q$; END $body$',
      'SELECT a$b, $1',
      'SELECT 2',
    ]);
  });

  it('ignores semicolons in strings, quoted identifiers, comments and parentheses', () => {
    const sql = [
      "COMMENT ON TABLE t IS 'a; b'';c';",
      "CREATE TABLE \"x;y\" (a text DEFAULT E'q\\';');",
      'CREATE RULE r AS ON INSERT TO t DO INSTEAD (INSERT INTO u VALUES (1); INSERT INTO u VALUES (2));',
      'SELECT 1 /* ; /* nested ; */ still; */ + 1; -- trailing; comment',
      "SELECT 'multi",
      "line; string';",
    ].join('\n');
    expect(statements(tokenize(sql))).to.deep.equal([
      "COMMENT ON TABLE t IS 'a; b'';c'",
      "CREATE TABLE \"x;y\" (a text DEFAULT E'q\\';')",
      'CREATE RULE r AS ON INSERT TO t DO INSTEAD (INSERT INTO u VALUES (1); INSERT INTO u VALUES (2))',
      'SELECT 1 /* ; /* nested ; */ still; */ + 1',
      "SELECT 'multi\nline; string'",
    ]);
  });

  it('follows standard_conforming_strings for backslashes in plain strings', () => {
    const splitter = new StatementSplitter();
    const out = [
      ...splitter.push('SET standard_conforming_strings = off;', 1, 0),
      ...splitter.push("SELECT 'it\\'s;'; SELECT 2;", 2, 0),
    ];
    expect(out.map((item) => (item.kind === 'statement' ? item.sql : ''))).to.deep.equal([
      'SET standard_conforming_strings = off',
      "SELECT 'it\\'s;'",
      'SELECT 2',
    ]);
  });

  it('reports psql meta-commands separately', () => {
    const items = tokenize('\\restrict abc\nSELECT 1;\n\\connect db\n');
    expect(items.map((item) => item.kind)).to.deep.equal(['meta', 'statement', 'meta']);
    expect(items[0]).to.deep.equal({ kind: 'meta', text: '\\restrict abc', line: 1 });
  });

  it('yields COPY rows raw until a line that is exactly \\.', () => {
    const dump = [
      'COPY public.t (a, b) FROM stdin;',
      '1\tx',
      '\\\\.',
      '\\.x',
      ' \\.',
      '\\.',
      'SELECT 1;',
    ].join('\n');
    const items = tokenize(dump, 3);
    expect(items.map((item) => item.kind)).to.deep.equal([
      'statement',
      'copy-row',
      'copy-row',
      'copy-row',
      'copy-row',
      'copy-end',
      'statement',
    ]);
    const rows = items.flatMap((item) => (item.kind === 'copy-row' ? [item.data.toString()] : []));
    expect(rows).to.deep.equal(['1\tx', '\\\\.', '\\.x', ' \\.']);
    expect(items[5]).to.deep.equal({ kind: 'copy-end', line: 6 });
  });

  it('joins a row whose line ends in an escaping backslash with the next line', () => {
    const items = tokenize('COPY t (a) FROM stdin;\nab\\\ncd\n\\\\\n\\.\n');
    const rows = items.flatMap((item) =>
      item.kind === 'copy-row' ? [[item.data.toString(), item.line]] : [],
    );
    expect(rows).to.deep.equal([
      ['ab\\\ncd', 2],
      ['\\\\', 4],
    ]);
  });

  it('strips CRLF line ends when the dump has them', () => {
    const items = tokenize('SELECT 1;\r\nCOPY t (a) FROM stdin;\r\nx\r\n\\.\r\n');
    expect(items.map((item) => item.kind)).to.deep.equal(['statement', 'statement', 'copy-row', 'copy-end']);
    expect((items[2] as { data: Buffer }).data.toString()).to.equal('x');
  });

  it('gives the offset and line of each statement', () => {
    const items = tokenize('-- c\nSELECT 1;\n\n  SELECT\n 2;\n');
    expect(items).to.deep.equal([
      { kind: 'statement', sql: 'SELECT 1', line: 2, offset: 5 },
      { kind: 'statement', sql: 'SELECT\n 2', line: 4, offset: 16 },
    ]);
  });

  it('fails with the line of an unterminated COPY block, statement or dollar quote', () => {
    const fails = (text: string) => {
      try {
        tokenize(text);
      } catch (error) {
        expect(error).to.be.instanceOf(DumpSyntaxError);
        return [(error as DumpSyntaxError).line, (error as Error).message];
      }
      throw new Error('no error');
    };
    const [copyLine, copyMessage] = fails('SELECT 1;\nCOPY t (a) FROM stdin;\n1\n2\n');
    expect(copyLine).to.equal(2);
    expect(copyMessage).to.contain('\\.');
    expect(fails('SELECT 1;\nCREATE FUNCTION f() AS $x$ body;\n\n')).to.deep.equal([
      2,
      'the statement starting here does not end before the end of the input: its dollar-quoted string $x$ is never closed',
    ]);
    expect(fails('\nSELECT 1')[0]).to.equal(2);
    expect(fails("SELECT 'x;\n")[1]).to.contain('quoted string');
  });
});
