import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ConfigError } from '@kasho/common';
import { loadTransformsFile, parseTransforms, tableKey } from '../../../src/transforms/index.js';
import { configProblems } from './helpers.js';

describe('transforms.yml', () => {
  it('accepts a valid file', () => {
    const config = parseTransforms(
      [
        'version: v1',
        'strict: true',
        'tables:',
        '  public.users:',
        '    email: FakeEmail',
        '    phone:',
        '      type: Regex',
        "      pattern: '(\\d{3})-(\\d{4})'",
        "      replacement: 'XXX-$2'",
        '    digits: { type: FakeDigits, length: 6 }',
        '    login:',
        '      type: Template',
        '      template: \'{{.email | before "@"}}\'',
        '  \'"Sales"."Orders.2024"\':',
        '    note: Null',
        '  public.empty: {}',
      ].join('\n'),
      'transforms.yml',
    );
    expect(config.strict).to.equal(true);
    expect(config.file).to.equal('transforms.yml');
    const users = config.tables.get(tableKey('public', 'users'));
    expect(users?.display).to.equal('public.users');
    expect(users?.columns.get('email')).to.include({ type: 'FakeEmail', location: 'transforms.yml:5:12' });
    expect(users?.columns.get('digits')?.params).to.deep.equal({ length: 6 });
    expect(users?.columns.get('login')?.fields).to.deep.equal(['email']);
    expect(users?.rowOrder).to.deep.equal(['login']);
    expect(config.tables.get(tableKey('Sales', 'Orders.2024'))?.display).to.equal('"Sales"."Orders.2024"');
    expect(config.tables.get(tableKey('public', 'empty'))?.columns.size).to.equal(0);
  });

  it('reports every mistake with file, line, column and reason', () => {
    const problems = configProblems(
      [
        'version: v1', // 1
        'tables:', // 2
        '  public.users:', // 3
        '    email: FakeEmial', // 4
        '    phone: Regex', // 5
        '    code:', // 6
        '      type: FakeDigits', // 7
        "      length: '6'", // 8
        '    zip: { type: FakeZip, size: 5 }', // 9
        '    ssn:', // 10
        '      type: Regex', // 11
        "      pattern: '(\\d{3}'", // 12
        "      replacement: 'x'", // 13
        '    label:', // 14
        '      type: Template', // 15
        "      template: '{{.name | shout}}'", // 16
        '    pw: { type: PasswordBcrypt, cost: 3 }', // 17
        '    year: { type: FakeYear, min: 2020, max: 2000 }', // 18
        '    a: { type: Template, template: "{{.b}}" }', // 19
        '    b: { type: Template, template: "{{.a}}" }', // 20
        '    doc:', // 21
        '      type: Json', // 22
        '      paths:', // 23
        "        'contact.email': FakeEmail", // 24
        "        '$.name': { type: Template, template: x }", // 25
        '    fixed: { type: Constant }', // 26
        '    gone: null', // 27
        '  users: { email: FakeEmail }', // 28
        'strict: yes please', // 29
        'extra: 1', // 30
      ].join('\n'),
      '/app/config/transforms.yml',
    );
    expect(problems).to.deep.equal([
      '/app/config/transforms.yml:4:12: unknown transform type FakeEmial (did you mean FakeEmail?)',
      '/app/config/transforms.yml:5:12: Regex needs pattern, replacement; write public.users.phone as a mapping with type: Regex',
      '/app/config/transforms.yml:8:15: FakeDigits parameter length: must be a number, not a string (write 6 without quotes)',
      '/app/config/transforms.yml:9:27: unknown parameter "size" for FakeZip; FakeZip takes no parameters',
      '/app/config/transforms.yml:12:16: Regex parameter pattern: does not compile: Invalid regular expression: /(\\d{3}/g: Unterminated group',
      '/app/config/transforms.yml:16:17: Template parameter template: template does not parse: unknown function shout (known: lower, upper, title, trim, slugify, year, len, before, after, replace, truncate, default, eq, ne, not, and, or, index) at character 11 of the template',
      '/app/config/transforms.yml:17:39: PasswordBcrypt parameter cost: must be between 4 and 31',
      '/app/config/transforms.yml:18:11: FakeYear: min must not be above max',
      '/app/config/transforms.yml:19:8: public.users: the templates of a -> b -> a read each other in a cycle',
      '/app/config/transforms.yml:24:9: JSON path "contact.email": a JSON path starts with $, e.g. $.contact.email',
      '/app/config/transforms.yml:25:19: Template cannot be used inside a JSON path; use a value transform such as FakeEmail or Null',
      '/app/config/transforms.yml:26:12: Constant needs parameter value',
      '/app/config/transforms.yml:27:11: public.users.gone: expected a transform type (e.g. FakeEmail) or a mapping with a type (for NULL write Null)',
      '/app/config/transforms.yml:28:3: table "users" must be written schema.table, e.g. public.users',
      '/app/config/transforms.yml:29:9: strict must be true or false',
      '/app/config/transforms.yml:30:1: unknown key "extra"; the top level has version, tables and strict',
    ]);
  });

  it('reports YAML syntax errors and duplicate keys with their position', () => {
    expect(
      configProblems('version: v1\ntables:\n  public.users:\n    email: FakeEmail\n    email: FakeName\n'),
    ).to.deep.equal(['transforms.yml:5:5: Map keys must be unique']);
    const syntax = configProblems('version: v1\ntables:\n  public.users:\n    email: [FakeEmail\n');
    expect(syntax[0]).to.match(/^transforms\.yml:\d+:\d+: /);
  });

  it('requires version v1 and tables', () => {
    expect(configProblems('')).to.deep.equal([
      'transforms.yml:1:1: the file is empty; it needs `version: v1` and `tables:`',
    ]);
    expect(configProblems('version: v2\ntables: {}\n')).to.deep.equal([
      'transforms.yml:1:10: version must be v1',
    ]);
    expect(configProblems('tables: {}\n')).to.deep.equal(['transforms.yml:1:1: missing `version: v1`']);
    expect(configProblems('version: v1\n')).to.deep.equal(['transforms.yml:1:1: missing `tables:`']);
    expect(configProblems('- a\n')).to.deep.equal([
      'transforms.yml:1:1: expected a mapping with `version: v1` and `tables:`',
    ]);
  });

  it('accepts an empty tables section', () => {
    expect(parseTransforms('version: v1\ntables:\n', 'x.yml').tables.size).to.equal(0);
  });

  it('rejects a table that lists no columns and a rule without type', () => {
    expect(
      configProblems('version: v1\ntables:\n  public.users:\n  public.orders:\n    total: { amount: 1 }\n'),
    ).to.deep.equal([
      'transforms.yml:3:3: table public.users must map column names to transforms, e.g. email: FakeEmail',
      'transforms.yml:5:12: public.orders.total: missing type (e.g. type: FakeEmail)',
    ]);
  });

  describe('loadTransformsFile', () => {
    it("gives the guide's message for a missing file", () => {
      expect(() => loadTransformsFile('/nonexistent/transforms.yml'))
        .to.throw(ConfigError)
        .with.property('message', 'Required config file /nonexistent/transforms.yml not found');
    });

    it('reads and validates a file', () => {
      const dir = mkdtempSync(join(tmpdir(), 'kasho-transforms-'));
      try {
        const file = join(dir, 'transforms.yml');
        writeFileSync(file, 'version: v1\ntables:\n  public.users:\n    email: FakeEmail\n');
        expect(loadTransformsFile(file).tables.size).to.equal(1);
        writeFileSync(file, 'version: v1\ntables:\n  public.users:\n    email: Fake\n');
        expect(() => loadTransformsFile(file)).to.throw(
          ConfigError,
          `${file}:4:12: unknown transform type Fake`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
