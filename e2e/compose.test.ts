/**
 * The deployment guide's Docker Compose quick start, verbatim, on the demo of environments/demo: the guide's
 * docker-compose.yml plus docker-compose.override.yml (source and target databases), the demo data, the guide's
 * scripts run in a kasho container on the compose network, and writes going on while the bootstrap runs. The target
 * must end up as the transformed source: identical where transforms.yml has no rule, different where it has one.
 */
import { expect } from 'chai';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parse } from 'yaml';
import { eventually } from '../hack/testing/services.js';
import {
  acquireDockerEngine,
  buildDemoImages,
  buildKashoImage,
  docker,
  dockerUnavailable,
  repoRoot,
  run,
  type CommandResult,
  type DockerEngine,
} from '../hack/docker/testing.js';

const demo = join(repoRoot, 'environments', 'demo');
const guide = join(repoRoot, '..', 'shared', 'seed', 'kasho-deployment-guide.md');
// The directory's name is the compose project's: fixed, so that a run killed half-way is cleaned up by the next.
const PROJECT = 'kasho-compose-e2e';
const SUPERUSER_PASSWORD = 'demo-postgres-password';
// Upper bound of the workload's rounds; it stops 10 rounds after the bootstrap completed.
const WORKLOAD_ROUNDS = 300;
const ROUNDS_AFTER_BOOTSTRAP = 10;

/** The guide's "Create a docker-compose.yml" block. */
function guideComposeFile(): string {
  const text = readFileSync(guide, 'utf8');
  const match = /Create a `docker-compose\.yml`:\s*```yaml\n([\s\S]*?)```/.exec(text);
  if (!match?.[1]) throw new Error(`no docker-compose.yml block in ${guide}`);
  return match[1];
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(true));
    server.listen(port, '0.0.0.0', () => server.close(() => done(false)));
  });
}

type Row = Record<string, unknown>;

/** The rows of a query as sorted JSON lines, for comparing two databases. */
async function snapshot(client: pg.Client, sql: string): Promise<string[]> {
  const { rows } = await client.query<Row>(sql);
  return rows.map((row) => JSON.stringify(row)).sort();
}

// Columns copied as they are (no rule in environments/demo/config/transforms.yml), per table.
const UNTRANSFORMED = {
  users: 'SELECT id, created_at::text FROM users',
  customers: "SELECT id, owner_id, plan, metadata->'seats' AS seats FROM customers",
  orders: 'SELECT id, customer_id, status::text, amount::text, ordered_at::text FROM orders',
};

// Columns with a rule, in two groups. Here no fake equals its original in the first. The second has few distinct
// values (six cities, ten first names): fakes are deterministic per value, so a value whose fake happens to be
// itself stays the same on every row holding it; there each source value must map to one fake, and not all to
// themselves.
const ALWAYS_DIFFERENT: Record<string, string[]> = {
  users: ['email', 'username', 'phone', 'ssn', 'password_hash', 'street_address', 'display_name'],
  customers: [
    'company_name',
    'contact_name',
    'contact_email',
    'phone',
    'billing_address',
    'tax_id',
    'metadata',
  ],
  orders: ['customer_email', 'shipping_name', 'shipping_address', 'card_number', 'notes'],
};
const PER_VALUE: Record<string, string[]> = {
  users: ['first_name', 'last_name', 'date_of_birth', 'city', 'state', 'zip_code'],
  customers: ['billing_city', 'billing_state', 'billing_zip'],
  orders: ['shipping_city', 'shipping_zip'],
};

describe('the guide’s Docker Compose deployment (environments/demo)', function () {
  let engine: DockerEngine | undefined;
  let dir: string | undefined;
  let source: pg.Client | undefined;
  let target: pg.Client | undefined;
  const outputs: string[] = [];
  let failed = false;

  const compose = async (args: string[], options: { input?: string; timeoutMs?: number } = {}) => {
    const result = await run('docker-compose', args, { cwd: dir, timeoutMs: 180_000, ...options });
    outputs.push(`$ docker-compose ${args.join(' ')}\n${result.output}`);
    return result;
  };
  const expectSuccess = (result: CommandResult) => expect(result.status, result.output).to.equal(0);

  async function containerAddress(service: string): Promise<string> {
    const id = await compose(['ps', '-q', service]);
    expectSuccess(id);
    const inspect = await docker([
      'inspect',
      '--format',
      '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
      id.stdout.trim(),
    ]);
    expectSuccess(inspect);
    return inspect.stdout.trim();
  }

  /** A superuser connection to a demo database, through its address on the compose network. */
  async function connect(service: string): Promise<pg.Client> {
    const host = await containerAddress(service);
    return eventually(
      `${service} accepting connections`,
      async () => {
        const client = new pg.Client({
          host,
          user: 'postgres',
          password: SUPERUSER_PASSWORD,
          database: 'app',
        });
        client.on('error', () => undefined);
        await client.connect();
        await client.query("SET TimeZone = 'UTC'");
        return client;
      },
      60_000,
    );
  }

  before(async function () {
    const reason = dockerUnavailable();
    if (reason) {
      console.log(`    (skipped: ${reason})`);
      this.skip();
    }
    this.timeout(30 * 60_000);
    engine = await acquireDockerEngine();
    await buildKashoImage();
    await buildDemoImages();

    // The quick start's directory: the compose files where the user created them, and the repository's
    // environments/ beside them, so that `cp environments/demo/config/transforms.yml config/` works as written.
    dir = join(mkdtempSync(join(tmpdir(), 'kasho-compose-')), PROJECT);
    mkdirSync(dir);
    for (const file of ['docker-compose.yml', 'docker-compose.override.yml']) {
      copyFileSync(join(demo, file), join(dir, file));
    }
    symlinkSync(join(repoRoot, 'environments'), join(dir, 'environments'));
    expectSuccess(await compose(['down', '-v', '--remove-orphans']));
    for (const port of [6379, 8080]) {
      if (await portInUse(port)) {
        throw new Error(
          `port ${port} is in use on this machine, and the guide's docker-compose.yml publishes 6379 and 8080: stop what listens there`,
        );
      }
    }
  });

  after(async function () {
    this.timeout(3 * 60_000);
    await source?.end();
    await target?.end();
    if (dir) {
      if (failed) console.log((await compose(['logs', '--no-color', '--tail=40'])).output);
      await compose(['down', '-v', '--remove-orphans']);
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
    await engine?.release();
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    failed = true;
    console.log(outputs.join('\n'));
  });

  it('keeps the guide’s services exactly in docker-compose.yml', function () {
    if (!existsSync(guide)) {
      console.log(`    (skipped: the deployment guide is not at ${guide})`);
      this.skip();
    }
    const file = readFileSync(join(demo, 'docker-compose.yml'), 'utf8');
    expect(file).to.equal(guideComposeFile());
    expect(parse(file)).to.deep.equal(parse(guideComposeFile()));
  });

  it('starts every service with the quick start, as written', async function () {
    this.timeout(5 * 60_000);
    // "Create config directory with transforms.yml"
    for (const line of ['mkdir -p config', 'cp environments/demo/config/transforms.yml config/']) {
      expectSuccess(await run('sh', ['-c', line], { cwd: dir }));
    }
    // "Set environment variables in .env file"
    copyFileSync(join(demo, '.env.example'), join(dir!, '.env'));
    // "Start all services"
    expectSuccess(await compose(['up', '-d']));

    const services = ['redis', 'pg-change-stream', 'pg-translicator', 'source-db', 'target-db'];
    await eventually(
      'every service running',
      async () => {
        const running = await compose(['ps', '--services', '--filter', 'status=running']);
        const names = running.stdout.split('\n').filter(Boolean);
        return services.every((service) => names.includes(service)) ? true : undefined;
      },
      60_000,
    );
    const status = await eventually(
      'pg-change-stream answering',
      async () => {
        const result = await compose([
          'run',
          '--rm',
          '-T',
          'kasho-scripts',
          './kasho-ctl',
          '--address',
          'pg-change-stream:8080',
          'status',
        ]);
        return result.status === 0 ? (JSON.parse(result.stdout) as Row) : undefined;
      },
      60_000,
    );
    expect(status.state).to.equal('WAITING');
  });

  it('copies the demo database, sanitized, with writes going on during the bootstrap', async function () {
    this.timeout(10 * 60_000);
    for (const file of ['schema.sql', 'seed.sql']) {
      const sql = readFileSync(join(demo, 'sql', file), 'utf8');
      const loaded = await compose(
        [
          'exec',
          '-T',
          'source-db',
          'psql',
          '-X',
          '-q',
          '-v',
          'ON_ERROR_STOP=1',
          '-U',
          'postgres',
          '-d',
          'app',
        ],
        { input: sql },
      );
      expectSuccess(loaded);
    }
    const prepared = await compose(['run', '--rm', '-T', 'kasho-scripts', './scripts/prepare-primary-db.sh']);
    expectSuccess(prepared);
    expect(prepared.output).to.contain('Done:');

    source = await connect('source-db');
    target = await connect('target-db');
    const src = source;

    // Writes in transactions of every kind, bounded in number, running before, during and after the bootstrap.
    let rounds = 0;
    let stopAfter = WORKLOAD_ROUNDS;
    const workload = (async () => {
      for (let i = 1; i <= WORKLOAD_ROUNDS && rounds < stopAfter; i++) {
        await src.query('BEGIN');
        const user = await src.query<{ id: string }>(
          `INSERT INTO users (email, username, first_name, last_name, display_name, phone, date_of_birth, ssn,
                              password_hash, street_address, city, state, zip_code)
           VALUES ($1, $2, 'Live', 'Writer', 'Live Writer', '+1-555-0100', '1990-01-01', '123456789',
                   '$2b$10$live', '1 Live St', 'Boston', 'MA', '02110') RETURNING id`,
          [`live${i}@example.com`, `live${i}`],
        );
        const customer = await src.query<{ id: string }>(
          `INSERT INTO customers (owner_id, company_name, contact_name, contact_email, phone, billing_address,
                                  billing_city, billing_state, billing_zip, tax_id, metadata)
           VALUES ($1, 'Live Co', 'Live Writer', $2, '+1-555-0100', '1 Live St', 'Boston', 'MA', '02110',
                   'US-0000001', '{"contact": {"email": "x@example.com", "phone": "1"}, "notes": "n", "seats": 3}')
           RETURNING id`,
          [user.rows[0]!.id, `live${i}@example.com`],
        );
        await src.query(
          `INSERT INTO orders (customer_id, customer_email, shipping_name, shipping_address, shipping_city,
                               shipping_zip, card_number, notes, amount)
           SELECT $1, 'live@example.com', 'Live Writer', '1 Live St', 'Boston', '02110', '4111000000000000',
                  'Ring twice', g * 10.5 FROM generate_series(1, 2) g`,
          [customer.rows[0]!.id],
        );
        await src.query('COMMIT');
        await src.query(`UPDATE users SET email = $1, city = 'Salem' WHERE id = $2`, [
          `moved${i}@example.net`,
          i * 3,
        ]);
        await src.query(`UPDATE orders SET status = 'shipped', amount = amount + 1 WHERE id = $1`, [i * 5]);
        await src.query('DELETE FROM orders WHERE id = $1', [i * 7]);
        rounds++;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    // Awaited below; a failure before that must not count as unhandled.
    workload.catch(() => undefined);

    const bootstrapped = await compose([
      'run',
      '--rm',
      '-T',
      'kasho-scripts',
      './scripts/bootstrap-kasho.sh',
    ]);
    const roundsDuringBootstrap = rounds;
    stopAfter = rounds + ROUNDS_AFTER_BOOTSTRAP;
    await workload;
    expectSuccess(bootstrapped);
    expect(bootstrapped.output).to.contain('Bootstrap complete.');
    expect(roundsDuringBootstrap, 'workload rounds before the bootstrap completed').to.be.greaterThan(0);
    expect(rounds).to.be.greaterThan(roundsDuringBootstrap);

    const tgt = target;
    for (const [table, sql] of Object.entries(UNTRANSFORMED)) {
      await eventually(
        `${table} on the target equal to the source in its untransformed columns`,
        async () => {
          const [want, have] = await Promise.all([snapshot(src, sql), snapshot(tgt, sql)]);
          if (have.length !== want.length) return undefined;
          expect(have).to.deep.equal(want);
          return true;
        },
        120_000,
      );
    }
  });

  it('replaces every column transforms.yml names, consistently across tables', async () => {
    const src = source!;
    const tgt = target!;
    for (const table of Object.keys(ALWAYS_DIFFERENT)) {
      const columns = [...ALWAYS_DIFFERENT[table]!, ...PER_VALUE[table]!];
      const sql = `SELECT id, ${columns.map((column) => `${column}::text`).join(', ')} FROM ${table} ORDER BY id`;
      const [want, have] = await Promise.all([src.query<Row>(sql), tgt.query<Row>(sql)]);
      expect(have.rows.length).to.equal(want.rows.length);
      for (const column of ALWAYS_DIFFERENT[table]!) {
        const same = want.rows.filter((row, index) => row[column] === have.rows[index]![column]).length;
        expect(same, `${table}.${column}: rows equal to the source`).to.equal(0);
      }
      for (const column of PER_VALUE[table]!) {
        const fakes = new Map<unknown, Set<unknown>>();
        want.rows.forEach((row, index) => {
          const seen = fakes.get(row[column]) ?? new Set();
          seen.add(have.rows[index]![column]);
          fakes.set(row[column], seen);
        });
        const ambiguous = [...fakes.values()].filter((seen) => seen.size !== 1).length;
        expect(ambiguous, `${table}.${column}: source values with more than one fake`).to.equal(0);
        const kept = [...fakes.entries()].filter(([value, seen]) => seen.has(value)).length;
        expect(kept, `${table}.${column}: source values kept as they are`).to.be.lessThan(fakes.size);
      }
    }
    // The same address gets the same fake everywhere: a customer whose contact is its owner keeps that match.
    const matching = `SELECT c.id FROM customers c JOIN users u ON u.id = c.owner_id
                       WHERE c.contact_email = u.email ORDER BY c.id`;
    const [sourceMatches, targetMatches] = await Promise.all([
      src.query<Row>(matching),
      tgt.query<Row>(matching),
    ]);
    expect(sourceMatches.rows.length).to.be.greaterThan(100);
    expect(targetMatches.rows).to.deep.equal(sourceMatches.rows);
    // The Template sees the fakes; the Json rule replaces paths inside the document and keeps the rest.
    const checks = await tgt.query<{ template: string; json: string }>(
      `SELECT (SELECT count(*) FROM users WHERE display_name IS DISTINCT FROM first_name || ' ' || last_name)::text
                AS template,
              (SELECT count(*) FROM customers
                WHERE metadata->'notes' <> 'null'::jsonb OR metadata->'contact'->>'email' = 'x@example.com')::text
                AS json`,
    );
    expect(checks.rows[0]).to.deep.equal({ template: '0', json: '0' });
  });
});
