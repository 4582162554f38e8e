import { expect } from 'chai';
import { Pipeline, tableRows } from '../../../../hack/testing/pipeline.js';
import { eventually } from '../../../../hack/testing/services.js';

const SCHEMA = `
  CREATE TABLE pk_t (id int PRIMARY KEY, a text, b int);
  CREATE TABLE idx_t (a int NOT NULL, b int NOT NULL, c text);
  CREATE UNIQUE INDEX idx_t_ab ON idx_t (a, b);
  ALTER TABLE idx_t REPLICA IDENTITY USING INDEX idx_t_ab;
  CREATE TABLE full_t (a int, b text, c jsonb, d json, p point);
  ALTER TABLE full_t REPLICA IDENTITY FULL;
  CREATE TABLE "Mixed Case" ("Id" int PRIMARY KEY, "order" text);
  CREATE TABLE parent (id int PRIMARY KEY);
  CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id));
  CREATE TABLE big_a (id int PRIMARY KEY, v text);
  CREATE TABLE big_b (id int PRIMARY KEY);
`;

describe('pg-translicator applying a live stream (real PostgreSQL, Redis and pg-change-stream)', function () {
  this.timeout(300_000);
  let pipeline: Pipeline;

  before(async () => {
    pipeline = await Pipeline.start({ schema: SCHEMA });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') pipeline?.printLogs();
  });

  after(async () => {
    await pipeline?.stop();
  });

  async function expectSameRows(table: string, orderBy = '1') {
    expect(await tableRows(pipeline.target, table, orderBy)).to.deep.equal(
      await tableRows(pipeline.source, table, orderBy),
    );
  }

  it('applies inserts, updates, key changes and deletes for DEFAULT, USING INDEX and FULL identity', async () => {
    const s = pipeline.source;
    await s.query(`INSERT INTO pk_t SELECT g, 'a' || g, g FROM generate_series(1, 50) g`);
    await s.query(`UPDATE pk_t SET a = NULL WHERE id % 5 = 0`);
    await s.query(`UPDATE pk_t SET a = '' WHERE id % 7 = 0`);
    await s.query(`UPDATE pk_t SET id = id + 1000 WHERE id % 3 = 0`);
    await s.query(`DELETE FROM pk_t WHERE id % 4 = 0`);
    await s.query(`INSERT INTO idx_t SELECT g, g % 3, 'c' || g FROM generate_series(1, 30) g`);
    await s.query(`UPDATE idx_t SET b = b + 10 WHERE a % 2 = 0`);
    await s.query(`UPDATE idx_t SET c = NULL WHERE a % 5 = 0`);
    await s.query(`DELETE FROM idx_t WHERE a % 6 = 0`);
    await s.query(`INSERT INTO full_t VALUES
      (1, NULL, '{"k": 1}', '{"k":  1}', '(1,2)'), (1, NULL, '{"k": 1}', '{"k":  1}', '(1,2)'),
      (2, 'x', NULL, NULL, NULL), (3, '', '[]', '[]', '(0,0)')`);
    await s.query(`UPDATE full_t SET b = 'changed' WHERE a = 2`);
    await s.query(`DELETE FROM full_t WHERE ctid = (SELECT ctid FROM full_t WHERE a = 1 LIMIT 1)`);
    await s.query(`UPDATE full_t SET a = 30 WHERE a = 3`);
    await s.query(`INSERT INTO "Mixed Case" VALUES (1, 'select'), (2, NULL)`);
    await s.query(`UPDATE "Mixed Case" SET "Id" = 3 WHERE "Id" = 2`);
    await pipeline.caughtUp();
    await expectSameRows('pk_t');
    await expectSameRows('idx_t', 'a, b');
    await expectSameRows('full_t', 'a, b');
    await expectSameRows('"Mixed Case"');
    expect((await tableRows(pipeline.target, 'full_t', 'a')).filter((row) => row[0] === '1')).to.have.length(
      1,
    );
  });

  it('applies TRUNCATE with CASCADE and foreign keys in source order', async () => {
    const s = pipeline.source;
    await s.query(`INSERT INTO parent SELECT generate_series(1, 10)`);
    await s.query(`INSERT INTO child SELECT g, g FROM generate_series(1, 10) g`);
    await pipeline.caughtUp();
    await expectSameRows('child');
    await s.query(`TRUNCATE parent CASCADE`);
    await s.query(`INSERT INTO parent VALUES (1)`);
    await pipeline.caughtUp();
    await expectSameRows('parent');
    await expectSameRows('child');
  });

  it('never shows a source transaction half-applied', async () => {
    let done = false;
    const seen = new Set<string>();
    const watcher = (async () => {
      while (!done) {
        const rows = await pipeline.target.query<{ a: string; b: string }>(
          `SELECT (SELECT count(*) FROM big_a)::text AS a, (SELECT count(*) FROM big_b)::text AS b`,
        );
        seen.add(`${rows[0]!.a}/${rows[0]!.b}`);
      }
    })();
    await pipeline.source.query(`BEGIN;
      INSERT INTO big_a SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
      INSERT INTO big_b VALUES (1);
      COMMIT`);
    await pipeline.caughtUp();
    done = true;
    await watcher;
    for (const state of seen) expect(['0/0', '20000/1']).to.include(state);
    expect(seen.has('20000/1')).to.equal(true);
  });

  it('replays DDL at its place between rows, with its search_path', async () => {
    const s = pipeline.source;
    const t = pipeline.target;
    await t.query('CREATE SCHEMA app');
    await s.query('CREATE SCHEMA app');
    await s.query(`CREATE TABLE app.events (id int PRIMARY KEY)`);
    await t.query(`CREATE TABLE app.events (id int PRIMARY KEY)`);
    await s.query(`BEGIN;
      INSERT INTO app.events VALUES (1);
      SET LOCAL search_path = app;
      ALTER TABLE events ADD COLUMN note text DEFAULT 'none';
      INSERT INTO public.kasho_ddl_log (ddl) VALUES ('ALTER TABLE events ADD COLUMN note text DEFAULT ''none''; INSERT INTO events VALUES (999)');
      INSERT INTO app.events VALUES (2, 'second');
      COMMIT`);
    await s.query(`INSERT INTO app.events VALUES (3, 'third')`);
    await pipeline.caughtUp();
    expect(await tableRows(t, 'app.events')).to.deep.equal([
      ['1', 'none'],
      ['2', 'second'],
      ['3', 'third'],
    ]);
  });

  it('lets only one translicator write: a second one waits for the apply lock and says why', async () => {
    const second = await import('../../../../hack/testing/services.js').then(
      async ({ startService, freePort }) => {
        const port = await freePort();
        return startService(
          'pg-translicator',
          {
            CHANGE_STREAM_SERVICE: `127.0.0.1:${pipeline.grpcPort}`,
            REPLICA_DATABASE_URL: pipeline.servers.env.REPLICA_DATABASE_URL!,
            TRANSFORMS_FILE: pipeline.transformsFile,
            HTTP_PORT: String(port),
          },
          { httpPort: port, waitFor: 'healthz' },
        );
      },
    );
    try {
      await eventually('the second translicator to report the lock', async () =>
        second.output().includes('Another pg-translicator holds the apply lock') ? true : undefined,
      );
      await pipeline.source.query(`INSERT INTO pk_t VALUES (5000, 'while two run', 1)`);
      await pipeline.caughtUp();
      await expectSameRows('pk_t');
      expect(second.output()).to.not.contain('Streaming from');
    } finally {
      await second.stop();
    }
  });
});
