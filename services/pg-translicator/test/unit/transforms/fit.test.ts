import { expect } from 'chai';
import { fitAuthored, fitGenerated, parseColumnType } from '../../../src/transforms/fit.js';
import { applyPath, compilePath, parseJson, serializeJson } from '../../../src/transforms/json.js';
import { Rand } from '../../../src/transforms/keyed.js';
import { parseArray, serializeArray } from '../../../src/transforms/pgarray.js';

describe('column types', () => {
  it('reads format_type output', () => {
    expect(parseColumnType('character varying(255)')).to.deep.equal({ family: 'text', maxChars: 255 });
    expect(parseColumnType('character varying')).to.deep.equal({ family: 'text', maxChars: undefined });
    expect(parseColumnType('character(2)')).to.deep.equal({ family: 'text', maxChars: 2 });
    expect(parseColumnType('character')).to.deep.equal({ family: 'text', maxChars: 1 });
    expect(parseColumnType('public.citext')).to.deep.equal({ family: 'text', maxChars: undefined });
    expect(parseColumnType('smallint')).to.include({ family: 'int', max: 32767n });
    expect(parseColumnType('numeric(10,2)')).to.deep.equal({ family: 'numeric', precision: 10, scale: 2 });
    expect(parseColumnType('numeric')).to.include({ family: 'numeric', precision: undefined });
    expect(parseColumnType('timestamp(3) with time zone')).to.deep.equal({ family: 'timestamp', tz: true });
    expect(parseColumnType('timestamp without time zone')).to.deep.equal({ family: 'timestamp', tz: false });
    expect(parseColumnType('time with time zone')).to.deep.equal({ family: 'time' });
    expect(parseColumnType('text[]')).to.deep.equal({
      family: 'array',
      element: { family: 'text', maxChars: undefined },
      delimiter: ',',
    });
    expect(parseColumnType('mood')).to.deep.equal({ family: 'other', name: 'mood' });
  });
});

describe('fitting values to columns', () => {
  const fit = (text: string, typeName: string) => fitAuthored(text, parseColumnType(typeName) as never);

  it('accepts valid values in the type text form and rejects the rest', () => {
    expect(fit('Ünïcode text', 'character varying(3)')).to.equal('Ünï');
    expect(fit('0042', 'integer')).to.equal('42');
    expect(fit('2147483648', 'integer')).to.equal(undefined);
    expect(fit('12.345', 'numeric(5,2)')).to.equal('12.35');
    expect(fit('-0.004', 'numeric(5,2)')).to.equal('0.00');
    expect(fit('1234.5', 'numeric(5,2)')).to.equal(undefined);
    expect(fit('1e3', 'double precision')).to.equal('1e3');
    expect(fit('yes', 'boolean')).to.equal('t');
    expect(fit('2024-02-30', 'date')).to.equal(undefined);
    expect(fit('2024-02-29', 'date')).to.equal('2024-02-29');
    expect(fit('2024-02-29', 'timestamp with time zone')).to.equal('2024-02-29 00:00:00+00');
    expect(fit('2024-02-29 10:11:12.5+05:30', 'timestamp with time zone')).to.equal(
      '2024-02-29 10:11:12.5+05:30',
    );
    expect(fit('0B4C8D8E2A3F4F5E9A8B7C6D5E4F3A2B', 'uuid')).to.equal('0b4c8d8e-2a3f-4f5e-9a8b-7c6d5e4f3a2b');
    expect(fit('plain', 'jsonb')).to.equal('"plain"');
    expect(fit('{"a": 1}', 'json')).to.equal('{"a": 1}');
    expect(fit('hi', 'bytea')).to.equal('\\x6869');
    expect(fit('happy', 'mood')).to.equal('happy');
  });

  it('replaces an unfitting generated value by one drawn from the same digest', () => {
    const digest = Buffer.alloc(32, 7);
    const a = fitGenerated('not a number', parseColumnType('integer') as never, new Rand(() => digest));
    const b = fitGenerated('not a number', parseColumnType('integer') as never, new Rand(() => digest));
    expect(a).to.match(/^\d+$/).and.equal(b);
    expect(fitGenerated('x', parseColumnType('numeric(6,2)') as never, new Rand(() => digest))).to.match(
      /^\d{1,4}\.\d{2}$/,
    );
    expect(fitGenerated('x', parseColumnType('uuid') as never, new Rand(() => digest))).to.match(
      /^[0-9a-f-]{36}$/,
    );
  });
});

describe('PostgreSQL arrays', () => {
  it('round-trips quoting, NULLs, nesting and dimensions', () => {
    for (const text of [
      '{}',
      '{a,NULL,"b c","NULL","","q\\"x","s\\\\t"}',
      '{{1,2},{3,NULL}}',
      '[0:1]={x,y}',
    ]) {
      expect(serializeArray(parseArray(text, ','), ',')).to.equal(text);
    }
    expect(parseArray('{a,NULL,"NULL"}', ',').items).to.deep.equal(['a', null, 'NULL']);
    expect(() => parseArray('{a,b', ',')).to.throw('the value is not a valid array literal');
  });
});

describe('JSON', () => {
  it('keeps numbers, key order and duplicate keys', () => {
    const text = '{"b": 1.000000000000000000001, "a": [1e400, -0, "x\\"é"], "b": {"c": null}}';
    expect(serializeJson(parseJson(text))).to.equal(text);
    expect(serializeJson(parseJson('["\\u00e9"]'))).to.equal('["é"]');
    expect(() => parseJson('{"a": }')).to.throw('the value is not valid JSON');
  });

  it('compiles and applies paths', () => {
    expect(compilePath("$.a['b c'][0][*]..d.*")).to.deep.equal([
      { k: 'key', name: 'a' },
      { k: 'key', name: 'b c' },
      { k: 'index', n: 0 },
      { k: 'wild' },
      { k: 'descendant', name: 'd' },
      { k: 'wild' },
    ]);
    expect(() => compilePath('a.b')).to.throw('a JSON path starts with $');
    expect(() => compilePath('$.a[x]')).to.throw("expected [*], [number] or ['key'] at character 4");
    const doc = parseJson('{"a": [{"d": 1}, {"x": {"d": 2}}], "d": 3}');
    const { root, matched } = applyPath(doc, compilePath('$..d'), () => ({ t: 'str', v: 'X' }));
    expect(matched).to.equal(3);
    expect(serializeJson(root)).to.equal('{"a": [{"d": "X"}, {"x": {"d": "X"}}], "d": "X"}');
    const last = applyPath(parseJson('[1, 2, 3]'), compilePath('$[-1]'), () => ({ t: 'null' }));
    expect(serializeJson(last.root)).to.equal('[1, 2, null]');
  });
});
