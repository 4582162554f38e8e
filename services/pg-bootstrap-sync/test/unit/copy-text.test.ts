import { expect } from 'chai';
import { CopyFormatError, decodeCopyRow, parseCopyHeader } from '../../src/copy-text.js';
import { LineSplitter } from '../../src/line-splitter.js';

const row = (text: string, columns: number) => decodeCopyRow(Buffer.from(text, 'utf8'), columns);

describe('COPY text decoding', () => {
  it('splits fields at tabs and keeps plain text as it is', () => {
    expect(row('1\tabc\t', 3)).to.deep.equal(['1', 'abc', '']);
    expect(row('only', 1)).to.deep.equal(['only']);
  });

  it('tells NULL (\\N) from the empty string and from text that merely contains \\N', () => {
    expect(row('\\N\t\t\\\\N\t\\Nx', 4)).to.deep.equal([null, '', '\\N', 'Nx']);
    expect(row('\\N', 1)).to.deep.equal([null]);
    expect(row('', 1)).to.deep.equal(['']);
  });

  it('decodes the escapes COPY writes for control characters and backslashes', () => {
    expect(row('a\\tb\\nc\\rd\\\\e\\bf\\fg\\vh', 1)).to.deep.equal(['a\tb\nc\rd\\e\bf\fg\vh']);
  });

  it('keeps a data value "\\." (written \\\\.) and any other escaped character literally', () => {
    expect(row('\\\\.', 1)).to.deep.equal(['\\.']);
    expect(row('x\\.y\\q\\"', 1)).to.deep.equal(['x.yq"']);
  });

  it('decodes octal (1 to 3 digits) and hex (1 or 2 digits) escapes into bytes', () => {
    expect(row('\\101\\60\\7z\\1011', 1)).to.deep.equal(['A0\u0007zA1']);
    expect(row('\\x41\\x4g\\xg\\x414', 1)).to.deep.equal(['A\u0004gxgA4']);
    // Bytes of a multi-byte UTF-8 character written as escapes.
    expect(row('\\xc3\\xa9|\\303\\251', 1)).to.deep.equal(['é|é']);
  });

  it('takes a character after a backslash literally, a tab included, as the server does', () => {
    expect(row('a\\\tb\tc', 2)).to.deep.equal(['a\tb', 'c']);
  });

  it('drops a lone backslash at the end of the line, as the server does', () => {
    expect(row('ab\\', 1)).to.deep.equal(['ab']);
  });

  it('decodes multi-byte UTF-8 next to escapes', () => {
    expect(row('日本\\t🎉\tünï\\\\', 2)).to.deep.equal(['日本\t🎉', 'ünï\\']);
  });

  it('refuses a row with the wrong number of fields, without showing its values', () => {
    expect(() => row('1\tsecret', 3)).to.throw(CopyFormatError, 'has 2 fields where 3 columns were expected');
    try {
      row('1\tsecret', 3);
    } catch (error) {
      expect((error as Error).message).to.not.contain('secret');
    }
  });

  it('reads rows of a table without columns', () => {
    expect(row('', 0)).to.deep.equal([]);
    expect(() => row('x', 0)).to.throw(CopyFormatError);
  });

  it('refuses bytes that are not UTF-8, raw or escaped, and NUL', () => {
    expect(() => decodeCopyRow(Buffer.from([0x61, 0xff]), 1)).to.throw(CopyFormatError, 'UTF-8');
    expect(() => row('\\xff', 1)).to.throw(CopyFormatError, 'UTF-8');
    expect(() => row('\\000', 1)).to.throw(CopyFormatError, 'NUL');
    expect(() => row('\\x0', 1)).to.throw(CopyFormatError, 'NUL');
  });

  it('decodes a row whose multi-byte characters were split across read chunks', () => {
    const bytes = Buffer.from('1\t日本 🎉 ü\\tx\t\\N\n2\té\t\n', 'utf8');
    const splitter = new LineSplitter();
    const lines: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 1) lines.push(...splitter.push(bytes.subarray(i, i + 1)));
    expect(splitter.end()).to.equal(undefined);
    expect(lines.map((line) => decodeCopyRow(line, 3))).to.deep.equal([
      ['1', '日本 🎉 ü\tx', null],
      ['2', 'é', ''],
    ]);
  });
});

describe('COPY header parsing', () => {
  it('reads the table and the column list, quoted names included', () => {
    expect(
      parseCopyHeader('COPY "Mixed"."Mixed Case" ("Id", "order", x) FROM stdin', 'public'),
    ).to.deep.equal({
      table: { schema: 'Mixed', name: 'Mixed Case' },
      columns: ['Id', 'order', 'x'],
    });
  });

  it('puts an unqualified table in the default schema and allows no column list', () => {
    expect(parseCopyHeader('COPY t  FROM stdin', 'app')).to.deep.equal({
      table: { schema: 'app', name: 't' },
      columns: [],
    });
  });

  it('refuses other COPY forms', () => {
    expect(() => parseCopyHeader('COPY t (a) FROM stdin WITH (FORMAT csv)', 'public')).to.throw(
      CopyFormatError,
    );
    expect(() => parseCopyHeader('COPY t (a) TO stdout', 'public')).to.throw(CopyFormatError);
  });
});
