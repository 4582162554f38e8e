import { expect } from 'chai';
import { Pipeline, tableRows } from '../../../../hack/testing/pipeline.js';
import { eventually } from '../../../../hack/testing/services.js';
import { createTransformer, parseTransforms } from '../../src/transforms/index.js';

const TRANSFORMS = `version: v1
tables:
  public.customers:
    email: FakeEmail
    name: FakeName
`;

const SCHEMA = `CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE, name text, visits int NOT NULL DEFAULT 0)`;

/** transform(source): the source's rows passed through the same transforms.yml and secret. */
async function expectedCustomers(pipeline: Pipeline): Promise<string[][]> {
  const transformer = createTransformer(parseTransforms(TRANSFORMS, 'transforms.yml'), {
    secret: pipeline.transformSecret,
  });
  const columns = [
    { name: 'id', typeName: 'integer' },
    { name: 'email', typeName: 'text' },
    { name: 'name', typeName: 'text' },
    { name: 'visits', typeName: 'integer' },
  ];
  const rows = await tableRows(pipeline.source, 'customers');
  return Promise.all(
    rows.map(async (row) => {
      const values = row.map((v) =>
        v === null ? { kind: 'null' as const } : { kind: 'text' as const, text: v },
      );
      const out = await transformer.transformRow({ schema: 'public', name: 'customers' }, columns, values);
      return out.map((v) => (v.kind === 'text' ? v.text : null)) as string[];
    }),
  );
}

describe('pg-translicator crash safety (kill -9 during a 100k-change backlog)', function () {
  this.timeout(600_000);
  let pipeline: Pipeline;

  before(async () => {
    pipeline = await Pipeline.start({ schema: SCHEMA, transformsYaml: TRANSFORMS });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') pipeline?.printLogs();
  });

  after(async () => {
    await pipeline?.stop();
  });

  it('converges to transform(source) with no row missing or doubled', async () => {
    await pipeline.translicator!.stop();
    const s = pipeline.source;
    for (let batch = 0; batch < 60; batch++) {
      const from = batch * 1_000 + 1;
      await s.query(
        `INSERT INTO customers (id, email, name) SELECT g, 'user' || g || '@example.com', 'Name ' || g
           FROM generate_series($1::int, $2::int) g`,
        [from, from + 999],
      );
    }
    for (let batch = 0; batch < 40; batch++) {
      await s.query(
        `UPDATE customers SET visits = visits + 1, email = 'new' || email WHERE id % 2 = 0 AND id % 40 = $1`,
        [batch],
      );
    }
    for (let batch = 0; batch < 12; batch++) {
      await s.query(`DELETE FROM customers WHERE id % 5 = 0 AND id % 12 = $1`, [batch]);
    }
    const status = await pipeline.api.getStatus();
    console.log(`      backlog: ${status.bufferedChanges} buffered changes`);
    expect(Number(status.bufferedChanges)).to.be.greaterThan(100_000);

    for (let crash = 0; crash < 2; crash++) {
      const translicator = await pipeline.startTranslicator();
      const appliedBefore = await appliedSeq(pipeline);
      await eventually(
        'the translicator to apply part of the backlog',
        async () => ((await appliedSeq(pipeline)) !== appliedBefore ? true : undefined),
        120_000,
      );
      await translicator.kill9();
      console.log(`      killed the translicator at applied position ${await appliedSeq(pipeline)}`);
    }
    await pipeline.startTranslicator();
    await pipeline.caughtUp(300_000);
    const target = await tableRows(pipeline.target, 'customers');
    expect(target.length).to.equal(48_000);
    expect(target).to.deep.equal(await expectedCustomers(pipeline));
  });
});

async function appliedSeq(pipeline: Pipeline): Promise<string> {
  const rows = await pipeline.target
    .query<{ p: string }>(`SELECT lsn::text || '/' || seq::text AS p FROM kasho.applied_position`)
    .catch(() => []);
  return rows[0]?.p ?? 'none';
}
