import { expect } from 'chai';
import { stringify } from 'yaml';
import {
  createTransformer,
  parseTransforms,
  StrictModeError,
  TransformError,
  type ColumnInfo,
  type TransformValue,
} from '../../../src/transforms/index.js';
import { NULL, one, SECRET, show, text, UNCHANGED } from './helpers.js';

function build(
  tables: Record<string, Record<string, unknown>>,
  options: { strict?: boolean; secret?: string } = {},
) {
  const warnings: string[] = [];
  const config = parseTransforms(
    stringify({ version: 'v1', ...(options.strict ? { strict: true } : {}), tables }),
    'transforms.yml',
  );
  const transformer = createTransformer(config, {
    secret: 'secret' in options ? options.secret : SECRET,
    logger: { warn: (message: string) => warnings.push(message) },
  });
  return { transformer, warnings };
}

const cols = (...spec: string[]): ColumnInfo[] =>
  spec.map((s) => {
    const [name, typeName] = s.split(':');
    return { name: name!, typeName: typeName ?? 'text' };
  });

const texts = (...values: (string | null | undefined)[]): TransformValue[] =>
  values.map((v) => (v === null ? NULL : v === undefined ? UNCHANGED : text(v)));

const shown = (values: TransformValue[]) => values.map(show);

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('transformer', () => {
  const users = { schema: 'public', name: 'users' };

  it('passes tables without rules through untouched', () => {
    const { transformer } = build({ 'public.users': { email: 'FakeEmail' } });
    const values = texts('a@b.c', null, undefined);
    expect(transformer.hasRules({ schema: 'public', name: 'orders' })).to.equal(false);
    expect(transformer.hasRules(users)).to.equal(true);
    expect(
      transformer.transformRow({ schema: 'public', name: 'orders' }, cols('email', 'x', 'y'), values),
    ).to.deep.equal(values);
  });

  it('gives a value the same fake in every table and column, and after a restart', () => {
    const tables = {
      'public.users': { email: 'FakeEmail' },
      'billing.invoices': { customer_email: 'FakeEmail' },
    };
    const first = build(tables).transformer;
    const restarted = build(tables).transformer;
    const a = first.transformRow(users, cols('id:integer', 'email'), texts('1', 'ann@corp.com'));
    const b = restarted.transformRow(
      { schema: 'billing', name: 'invoices' },
      cols('customer_email:character varying(255)'),
      texts('ann@corp.com'),
    );
    expect(show(a[1])).to.equal(show(b[0]));
    expect(show(a[0])).to.equal('1');
    expect(show(a[1])).to.not.equal('ann@corp.com');
  });

  it('keeps NULL and leaves unchanged TOAST values alone', () => {
    const { transformer } = build({ 'public.users': { email: 'FakeEmail', bio: 'FakeParagraph' } });
    expect(
      shown(transformer.transformRow(users, cols('email', 'bio'), texts(null, undefined))),
    ).to.deep.equal([null, undefined]);
  });

  it('uses the fixed development key without TRANSFORM_SECRET and warns once', () => {
    const withoutKey = build({ 'public.users': { email: 'FakeEmail' } }, { secret: undefined });
    const emptyKey = build({ 'public.users': { email: 'FakeEmail' } }, { secret: '' });
    expect(withoutKey.warnings).to.have.length(1);
    expect(withoutKey.warnings[0]).to.match(/TRANSFORM_SECRET is not set/);
    const row = (t: typeof withoutKey.transformer) =>
      show(t.transformRow(users, cols('email'), texts('a@b.c'))[0]);
    expect(row(withoutKey.transformer)).to.equal(row(emptyKey.transformer));
    expect(row(withoutKey.transformer)).to.not.equal(one('FakeEmail', 'a@b.c'));
    expect(build({ 'public.users': { email: 'FakeEmail' } }).warnings).to.deep.equal([]);
  });

  describe('templates', () => {
    const tables = {
      'public.users': {
        first_name: 'FakeFirstName',
        last_name: 'FakeLastName',
        handle: { type: 'Template', template: '{{.login}}-{{.id}}' },
        login: { type: 'Template', template: '{{.first_name | lower}}.{{.last_name | lower}}' },
        label: { type: 'Template', template: '{{if .active}}on{{else}}off{{end}}:{{.plan | upper}}' },
      },
    };
    const columns = cols(
      'id:bigint',
      'first_name',
      'last_name',
      'login',
      'handle',
      'active:boolean',
      'plan',
      'label',
    );

    it('run after the other transforms, see their output and the whole row, in dependency order', () => {
      const { transformer } = build(tables);
      const out = shown(
        transformer.transformRow(users, columns, texts('42', 'Ann', 'Lee', 'x', 'y', 'f', 'pro', 'z')),
      );
      const [, first, last, login, handle, , , label] = out;
      expect(first).to.not.equal('Ann');
      expect(login).to.equal(`${first!.toLowerCase()}.${last!.toLowerCase()}`);
      expect(handle).to.equal(`${login}-42`);
      expect(label).to.equal('off:PRO');
    });

    it('recompute a template column whose own value was not sent', () => {
      const { transformer } = build(tables);
      const full = shown(
        transformer.transformRow(users, columns, texts('42', 'Ann', 'Lee', 'x', 'y', 't', 'pro', 'z')),
      );
      const partial = shown(
        transformer.transformRow(
          users,
          columns,
          texts('42', 'Ann', 'Lee', 'x', undefined, 't', 'pro', undefined),
        ),
      );
      expect(partial).to.deep.equal(full);
    });

    it('stop with a clear error, naming table and column but no value, when an input was not sent', () => {
      const { transformer } = build(tables);
      const error = thrown(() =>
        transformer.transformRow(
          users,
          columns,
          texts('42', 'Ann', 'Lee', 'x', 'y', 't', undefined, 'secret-label'),
        ),
      );
      expect(error).to.be.instanceOf(TransformError);
      expect(error.message).to.equal(
        'Cannot compute public.users.label (Template): it reads plan, whose value this change does not carry',
      );
    });

    it('keep NULL template columns NULL', () => {
      const { transformer } = build(tables);
      const out = shown(
        transformer.transformRow(users, columns, texts('42', 'Ann', 'Lee', 'x', null, 't', 'pro', null)),
      );
      expect(out[4]).to.equal(null);
      expect(out[7]).to.equal(null);
    });

    it('reject a template reading a column the table does not have', () => {
      const { transformer } = build({
        'public.users': { label: { type: 'Template', template: '{{.nope}}' } },
      });
      const error = thrown(() => transformer.transformRow(users, cols('label'), texts('x')));
      expect(error).to.be.instanceOf(TransformError);
      expect(error.message).to.equal(
        'public.users.label (Template) reads column nope, which public.users does not have',
      );
      expect(() => transformer.checkColumns(users, cols('label'))).to.throw(TransformError);
    });

    it('read the original value of their own column', () => {
      expect(one({ type: 'Template', template: '{{.c | after "@"}}' }, 'ann@corp.com')).to.equal('corp.com');
    });

    it('must give a valid value for a typed column', () => {
      const { transformer } = build({
        'public.users': { age: { type: 'Template', template: 'n/a {{.name}}' } },
      });
      const error = thrown(() =>
        transformer.transformRow(users, cols('age:integer', 'name'), texts('41', 'Ann Lee')),
      );
      expect(error.message).to.equal(
        'Cannot transform public.users.age (Template): the result is not a valid integer between -2147483648 and 2147483647',
      );
      expect(error.message).to.not.include('Ann');
    });
  });

  describe('old keys', () => {
    const tables = {
      'public.users': {
        email: 'FakeEmail',
        name: 'FakeName',
        slug: { type: 'Template', template: '{{.email | before "@"}}' },
        code: { type: 'Template', template: '{{.name | slugify}}' },
      },
    };
    const columns = cols('email', 'name', 'slug', 'code');

    it('are transformed exactly like new rows, so updates and deletes find transformed rows', () => {
      const { transformer } = build(tables);
      const row = transformer.transformRow(users, columns, texts('ann@corp.com', 'Ann Lee', 'a', 'b'));
      const key = transformer.transformKey(users, columns, texts('ann@corp.com', undefined, 'a', undefined));
      expect(show(key[0])).to.equal(show(row[0]));
      expect(show(key[2])).to.equal(show(row[2]));
      expect(key[1]).to.deep.equal(UNCHANGED);
      expect(key[3]).to.deep.equal(UNCHANGED);
    });

    it('fail loudly when a key template reads a column outside the key', () => {
      const { transformer } = build(tables);
      const error = thrown(() =>
        transformer.transformKey(users, columns, texts(undefined, undefined, undefined, 'ann-lee')),
      );
      expect(error.message).to.equal(
        'Cannot compute public.users.code (Template): it reads name, whose value this change does not carry',
      );
    });
  });

  describe('strict mode', () => {
    const tables = { 'public.users': { email: 'FakeEmail', id: 'Keep' } };

    it('stops on a column without a rule in a table with rules, naming table and columns', () => {
      const { transformer } = build(tables, { strict: true });
      expect(transformer.strict).to.equal(true);
      const error = thrown(() =>
        transformer.transformRow(
          users,
          cols('id:integer', 'email', 'nickname', 'notes'),
          texts('1', 'a@b.c', 'Annie', null),
        ),
      );
      expect(error).to.be.instanceOf(StrictModeError);
      expect(error.message).to.equal(
        'strict mode: columns nickname, notes of public.users have no rule in transforms.yml',
      );
      expect(error.message).to.not.include('Annie');
      expect(() => transformer.checkColumns(users, cols('id:integer', 'email', 'nickname'))).to.throw(
        StrictModeError,
      );
    });

    it('accepts a table whose every column has a rule, and tables without rules', () => {
      const { transformer } = build(tables, { strict: true });
      expect(() =>
        transformer.transformRow(users, cols('id:integer', 'email'), texts('1', 'a@b.c')),
      ).to.not.throw();
      expect(() =>
        transformer.transformRow({ schema: 'public', name: 'plans' }, cols('id', 'secret'), texts('1', 'x')),
      ).to.not.throw();
    });

    it('checks a column list again when the caller changes it in place after DDL', () => {
      const { transformer } = build(tables, { strict: true });
      const columns = cols('id:integer', 'email');
      transformer.transformRow(users, columns, texts('1', 'a@b.c'));
      columns.push({ name: 'nickname', typeName: 'text' });
      expect(() => transformer.transformRow(users, columns, texts('1', 'a@b.c', 'Annie'))).to.throw(
        StrictModeError,
      );
    });

    it('is off by default', () => {
      const { transformer } = build(tables);
      expect(
        shown(
          transformer.transformRow(
            users,
            cols('id:integer', 'email', 'nickname'),
            texts('1', 'a@b.c', 'Annie'),
          ),
        )[2],
      ).to.equal('Annie');
    });
  });

  it('warns once about a rule for a column the table does not have', () => {
    const { transformer, warnings } = build({ 'public.users': { emial: 'FakeEmail' } });
    transformer.transformRow(users, cols('email'), texts('a@b.c'));
    transformer.transformRow(users, cols('email', 'name'), texts('a@b.c', 'x'));
    expect(warnings).to.deep.equal([
      'public.users has no column emial; the rule at transforms.yml:4:12 is not used',
    ]);
  });

  it('never puts row values in error messages', () => {
    const { transformer } = build({
      'public.users': {
        code: { type: 'Regex', pattern: '^(\\d)', replacement: 'X$1' },
        doc: { type: 'Json', paths: { '$.email': 'FakeEmail' } },
      },
    });
    const regexError = thrown(() => transformer.transformRow(users, cols('code:integer'), texts('98765')));
    expect(regexError.message).to.equal(
      'Cannot transform public.users.code (Regex): the result is not a valid integer between -2147483648 and 2147483647',
    );
    const jsonError = thrown(() =>
      transformer.transformRow(users, cols('doc'), texts('not json: ann@corp.com')),
    );
    expect(jsonError.message).to.equal(
      'Cannot transform public.users.doc (Json): the value is not valid JSON',
    );
    const arrayError = thrown(() => transformer.transformRow(users, cols('doc:jsonb[]'), texts('{"oops')));
    expect(arrayError.message).to.not.include('oops');
  });

  describe('JSON paths', () => {
    const rule = {
      type: 'Json',
      paths: {
        '$.contact.email': 'FakeEmail',
        '$..phone': 'FakePhone',
        '$.tags[*]': 'FakeWord',
        '$.ssn': 'Null',
        '$.history[0].amount': { type: 'Noise', amount: 1 },
      },
    };

    it('transforms the values at the paths and nothing else, losslessly', () => {
      const doc = JSON.stringify({
        contact: { email: 'ann@corp.com', phone: '555-123-4567' },
        orders: [{ phone: '555-765-4321', total: 'TOTAL' }],
        tags: ['vip', 'beta'],
        ssn: '123-45-6789',
        history: [{ amount: 100 }],
      }).replace('"TOTAL"', '12345678901234567890.50');
      const out = JSON.parse(one(rule, doc, 'jsonb') as string);
      expect(out.contact.email).to.equal(one('FakeEmail', 'ann@corp.com'));
      expect(out.contact.phone).to.equal(one('FakePhone', '555-123-4567'));
      expect(out.orders[0].phone).to.equal(one('FakePhone', '555-765-4321'));
      expect(out.tags).to.deep.equal([one('FakeWord', 'vip'), one('FakeWord', 'beta')]);
      expect(out.ssn).to.equal(null);
      expect(out.history[0].amount).to.be.within(99, 101);
      expect(one(rule, doc, 'jsonb')).to.include('"total": 12345678901234567890.50');
    });

    it('returns a document the paths do not match exactly as it was', () => {
      const doc = '{"a":1,   "b":[true,null]}';
      expect(one(rule, doc, 'json')).to.equal(doc);
    });

    it('transforms every leaf under a matched object', () => {
      const out = JSON.parse(
        one(
          { type: 'Json', paths: { '$.contact': 'Hash' } },
          '{"contact":{"a":"x","b":[1,"y"]}}',
          'jsonb',
        ) as string,
      );
      expect(out.contact.a).to.match(/^[0-9a-f]{32}$/);
      expect(out.contact.b[1]).to.match(/^[0-9a-f]{32}$/);
      expect(typeof out.contact.b[0]).to.equal('number');
    });
  });

  it('passes passwords a cleartext computed from the transformed row', () => {
    const { transformer } = build({
      'public.users': {
        username: 'FakeUsername',
        password_hash: { type: 'PasswordPBKDF2', cleartext: '{{.username}}!', use_salt: false },
        same: { type: 'Template', template: '{{.username}}!' },
      },
    });
    const a = shown(
      transformer.transformRow(users, cols('username', 'password_hash', 'same'), texts('ann', 'h1', 'x')),
    );
    const b = shown(
      transformer.transformRow(users, cols('username', 'password_hash', 'same'), texts('ann', 'h2', 'x')),
    );
    expect(a[1]).to.match(/^\$pbkdf2-sha256\$/);
    expect(a[1]).to.equal(b[1]);
  });
});
