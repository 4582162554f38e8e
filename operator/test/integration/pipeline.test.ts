/**
 * The operator driving a real pipeline: the API server rig holds the resources, while the programs the pods would
 * run (the preparation and bootstrap scripts, pg-change-stream, pg-translicator) run here on local PostgreSQL and
 * Redis, each started from the very settings the operator put into its Job or Deployment. The controller talks
 * gRPC to the local change-stream and reads the local translicator's metrics.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import type { V1Container } from '@kubernetes/client-node';
import { parseLsn } from '@kasho/common/lsn';
import { buildKubeTools } from '../../../hack/testing/kube-apiserver.js';
import { startLocalServers, type LocalServers } from '../../../hack/testing/local-servers.js';
import { freePort, startService, type RunningService } from '../../../hack/testing/services.js';
import { Controller } from '../../src/controller/controller.js';
import { httpTranslicatorMetricsReader } from '../../src/controller/dependencies.js';
import {
  createNamespace,
  createPipeline,
  createSecret,
  deletePipeline,
  eventually,
  events,
  finishJob,
  getPipeline,
  patchPipeline,
  pipelineExists,
  run,
  startRig,
  testLogger,
  waitForJob,
  waitForStatus,
  type Rig,
} from './support.js';

const root = resolve(import.meta.dirname, '..', '..', '..');
const KASHO_PASSWORD = 'Kasho pw/with:odd@chars';
const ROWS = 300;
const SCHEMA = `CREATE TABLE public.users (id int PRIMARY KEY, email text NOT NULL, name text)`;
const TRANSFORMS = 'version: v1\ntables:\n  public.users:\n    email: FakeEmail\n';

describe('operator driving a real change-stream and translicator', function () {
  this.timeout(180_000);
  let rig: Rig;
  let servers: LocalServers;
  let namespace: string;
  let controller: Controller;
  let grpcPort: number;
  let translicatorPort: number;
  let changeStream: RunningService | undefined;
  let translicator: RunningService | undefined;
  let scratch: string;

  /** A container's environment as the kubelet would give it: values, and secretKeyRefs read from the API server. */
  async function containerEnv(container: V1Container): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const variable of container.env ?? []) {
      const ref = variable.valueFrom?.secretKeyRef;
      if (ref) {
        const secret = await rig.core.readNamespacedSecret({ namespace, name: ref.name ?? '' });
        env[variable.name] = Buffer.from(secret.data?.[ref.key] ?? '', 'base64').toString('utf8');
      } else {
        env[variable.name] = variable.value ?? '';
      }
    }
    return env;
  }

  /** Runs a Job's script here, as its pod would (stdin closed, no terminal), and writes the outcome to the Job. */
  async function runJob(name: string, overrides: Record<string, string> = {}): Promise<string> {
    const job = await waitForJob(rig, namespace, name);
    const container = job.spec?.template.spec?.containers[0];
    if (!container?.command?.[0]) throw new Error(`Job ${name} has no command`);
    const script = container.command[0].replace(/^\/app\//, `${root}/`);
    const env = { ...(await containerEnv(container)), ...overrides };
    const result = await run('bash', [script, ...(container.args ?? [])], {
      ...env,
      PATH: process.env.PATH ?? '',
    });
    const output = result.stdout + result.stderr;
    expect(result.status, output).to.equal(0);
    await finishJob(rig, namespace, name, 'Complete');
    return output;
  }

  before(async function () {
    this.timeout(30 * 60_000);
    await buildKubeTools();
    [rig, servers] = await Promise.all([startRig(), startLocalServers()]);
    const source = servers.source!;
    const target = servers.target!;
    // The target starts empty: the bootstrap's dump brings the schema.
    await source.query(SCHEMA);
    await source.query(
      `INSERT INTO public.users SELECT g, 'user' || g || '@example.com', 'User ' || g FROM generate_series(1, ${ROWS}) g`,
    );
    grpcPort = await freePort();
    translicatorPort = await freePort();
    scratch = mkdtempSync(join(tmpdir(), 'kasho-operator-test-'));

    namespace = await createNamespace(rig, 'pipe');
    await createSecret(rig, namespace, 'source-db', {
      host: source.host,
      port: String(source.port),
      dbname: source.database,
      username: 'kasho',
      password: KASHO_PASSWORD,
    });
    await createSecret(rig, namespace, 'source-su', {
      username: source.superuser,
      password: source.superuserPassword,
    });
    await createSecret(rig, namespace, 'target-db', {
      url: `postgresql://kasho:${encodeURIComponent(KASHO_PASSWORD)}@${target.host}:${target.port}/${target.database}`,
    });
    await createSecret(rig, namespace, 'target-su', {
      username: target.superuser,
      password: target.superuserPassword,
    });
    await createSecret(rig, namespace, 'redis', { url: servers.redis!.url });

    controller = new Controller({
      kubeConfig: rig.kubeConfig,
      namespaces: [namespace],
      defaultImage: 'kasho:test',
      pollIntervalMs: 500,
      identity: 'test-operator',
      logger: testLogger,
      changeStreamAddress: () => `127.0.0.1:${grpcPort}`,
      translicatorMetrics: httpTranslicatorMetricsReader(
        () => `http://127.0.0.1:${translicatorPort}/metrics`,
      ),
      grpcTimeoutMs: 3000,
    });
    await controller.start();
    await createPipeline(rig, namespace, 'orders', {
      source: { secretName: 'source-db', superuser: { secretName: 'source-su' } },
      target: { secretName: 'target-db', urlKey: 'url', superuser: { secretName: 'target-su' } },
      redis: { external: { secretName: 'redis' } },
      transforms: { inline: TRANSFORMS },
      bootstrap: { autoComplete: false },
    });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      for (const service of [changeStream, translicator]) {
        if (service) console.log(`----- ${service.name} -----\n${service.output()}`);
      }
    }
  });

  after(async function () {
    this.timeout(120_000);
    await controller?.stop();
    await translicator?.stop();
    await changeStream?.stop();
    await servers?.stop();
    await rig?.server.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('prepares both databases by running the preparation Job', async function () {
    await waitForStatus(rig, namespace, 'orders', 'phase Preparing', (s) => s.phase === 'Preparing');
    const output = await runJob('orders-prepare');
    expect(output).to.not.contain(KASHO_PASSWORD);
    const status = await waitForStatus(
      rig,
      namespace,
      'orders',
      'Prepared',
      (s) => s.conditions?.find((c) => c.type === 'Prepared')?.status === 'True',
    );
    expect(status.prepare?.jobName).to.equal('orders-prepare');
    const publications = await servers.source!.query(
      "SELECT 1 FROM pg_publication WHERE pubname = 'kasho_pub'",
    );
    expect(publications).to.have.length(1);
  });

  it('sees the change-stream WAITING, runs the bootstrap Job, and waits for completion', async function () {
    const deployment = await eventually('the change-stream Deployment', () =>
      rig.apps.readNamespacedDeployment({ namespace, name: 'orders-change-stream' }).catch(() => undefined),
    );
    const container = deployment.spec?.template.spec?.containers[0];
    if (!container) throw new Error('no container');
    const httpPort = await freePort();
    changeStream = await startService(
      'pg-change-stream',
      { ...(await containerEnv(container)), GRPC_PORT: String(grpcPort), HTTP_PORT: String(httpPort) },
      { httpPort, waitFor: 'readyz' },
    );
    await waitForStatus(
      rig,
      namespace,
      'orders',
      'WAITING and Bootstrapping',
      (s) => s.changeStreamState === 'WAITING' && s.phase === 'Bootstrapping',
    );

    const output = await runJob('orders-bootstrap', {
      CHANGE_STREAM_SERVICE: `127.0.0.1:${grpcPort}`,
      DUMP_DIR: scratch,
    });
    // The Job loads the snapshot but leaves the completion to the operator.
    expect(output).to.contain('The snapshot is loaded');
    const status = await waitForStatus(
      rig,
      namespace,
      'orders',
      'WaitingForCompletion',
      (s) => s.phase === 'WaitingForCompletion',
    );
    expect(status.changeStreamState).to.equal('ACCUMULATING');
    expect(status.conditions?.find((c) => c.type === 'Ready')?.reason).to.equal('AwaitingCompletion');
    expect(status.bootstrap?.rows).to.be.at.least(ROWS);
    expect(status.bootstrap?.finishedAt).to.be.a('string');
    expect(status.startLsn).to.match(/^[0-9A-F]+\/[0-9A-F]+$/);
  });

  it('resets the bootstrap when annotated, and runs it again with a new Job', async function () {
    const first = await rig.batch.readNamespacedJob({ namespace, name: 'orders-bootstrap' });
    const epoch = (await waitForStatus(rig, namespace, 'orders', 'an epoch', (s) => s.epoch !== undefined))
      .epoch;
    await patchPipeline(rig, namespace, 'orders', {
      metadata: { annotations: { 'kasho.io/reset-bootstrap': 'true' } },
    });
    const second = await eventually('a new bootstrap Job', async () => {
      const job = await rig.batch
        .readNamespacedJob({ namespace, name: 'orders-bootstrap' })
        .catch(() => undefined);
      return job && job.metadata?.uid !== first.metadata?.uid ? job : undefined;
    });
    expect(second.status?.conditions ?? []).to.deep.equal([]);
    const reset = (await events(rig, namespace, 'orders')).filter((e) => e.reason === 'BootstrapReset');
    expect(reset).to.have.length(1);
    const annotations = (await getPipeline(rig, namespace, 'orders')).metadata.annotations ?? {};
    expect(annotations).to.not.have.property('kasho.io/reset-bootstrap');

    await runJob('orders-bootstrap', { CHANGE_STREAM_SERVICE: `127.0.0.1:${grpcPort}`, DUMP_DIR: scratch });
    const status = await waitForStatus(
      rig,
      namespace,
      'orders',
      'loaded again',
      (s) => s.phase === 'WaitingForCompletion' && s.epoch !== epoch,
    );
    expect(status.bootstrap?.rows).to.be.at.least(ROWS);
  });

  it('completes the bootstrap exactly once when annotated, and removes the annotation', async function () {
    await patchPipeline(rig, namespace, 'orders', {
      metadata: { annotations: { 'kasho.io/complete-bootstrap': 'true' } },
    });
    const status = await waitForStatus(
      rig,
      namespace,
      'orders',
      'completed by the annotation',
      (s) => s.bootstrap?.completedBy === 'annotation' && s.changeStreamState === 'STREAMING',
    );
    expect(status.conditions?.find((c) => c.type === 'Bootstrapped')).to.deep.include({
      status: 'True',
      reason: 'Completed',
    });
    const pipeline = await eventually('the annotation to be removed', async () => {
      const { metadata } = (await rig.custom.getNamespacedCustomObject({
        group: 'kasho.io',
        version: 'v1alpha1',
        namespace,
        plural: 'kashopipelines',
        name: 'orders',
      })) as { metadata: { annotations?: Record<string, string> } };
      return metadata.annotations?.['kasho.io/complete-bootstrap'] === undefined ? metadata : undefined;
    });
    expect(pipeline.annotations ?? {}).to.not.have.property('kasho.io/complete-bootstrap');
    // A few more polls must not complete it again.
    await new Promise((done) => setTimeout(done, 2000));
    const completed = (await events(rig, namespace, 'orders')).filter(
      (e) => e.reason === 'BootstrapCompleted',
    );
    expect(completed).to.have.length(1);
    expect(completed[0]?.message).to.contain('CompleteBootstrap (annotation)');
  });

  it('runs the translicator it deploys, and the status shows real positions and lag', async function () {
    const deployment = await eventually('the translicator Deployment', () =>
      rig.apps.readNamespacedDeployment({ namespace, name: 'orders-translicator' }).catch(() => undefined),
    );
    expect(deployment.spec?.replicas).to.equal(1);
    expect(deployment.spec?.strategy?.type).to.equal('Recreate');
    const container = deployment.spec?.template.spec?.containers[0];
    if (!container) throw new Error('no container');
    const configMap = await rig.core.readNamespacedConfigMap({ namespace, name: 'orders-transforms' });
    const transformsFile = join(scratch, 'transforms.yml');
    writeFileSync(transformsFile, configMap.data?.['transforms.yml'] ?? '');
    const env = await containerEnv(container);
    expect(env.CHANGE_STREAM_SERVICE).to.equal('orders-change-stream:8080');
    expect(env.TRANSFORM_SECRET).to.have.length.greaterThan(30);
    translicator = await startService(
      'pg-translicator',
      {
        ...env,
        CHANGE_STREAM_SERVICE: `127.0.0.1:${grpcPort}`,
        TRANSFORMS_FILE: transformsFile,
        HTTP_PORT: String(translicatorPort),
      },
      { httpPort: translicatorPort, waitFor: 'readyz' },
    );

    await servers.source!.query(`INSERT INTO public.users VALUES (${ROWS + 1}, 'late@example.com', 'Late')`);
    const [{ lsn }] = (await servers.source!.query<{ lsn: string }>(
      'SELECT pg_current_wal_lsn()::text AS lsn',
    )) as [{ lsn: string }];
    const rows = await eventually('the late row on the target', async () => {
      const found = await servers.target!.query<{ email: string }>(
        'SELECT email FROM public.users WHERE id = $1',
        [ROWS + 1],
      );
      return found.length > 0 ? found : undefined;
    });
    expect(rows[0]?.email).to.not.equal('late@example.com');
    const count = await servers.target!.query<{ n: string }>('SELECT count(*)::text AS n FROM public.users');
    expect(Number(count[0]?.n)).to.equal(ROWS + 1);

    const status = await waitForStatus(
      rig,
      namespace,
      'orders',
      'Streaming with the late row applied',
      (s) =>
        s.phase === 'Streaming' &&
        s.appliedLsn !== undefined &&
        parseLsn(s.appliedLsn) >= parseLsn(lsn) - 1000n,
    );
    expect(status.conditions?.find((c) => c.type === 'Ready')).to.deep.include({
      status: 'True',
      reason: 'Streaming',
    });
    expect(status.conditions?.find((c) => c.type === 'Streaming')?.status).to.equal('True');
    expect(status.confirmedLsn).to.match(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(status.lagBytes).to.be.a('number');
    expect(status.lagSeconds).to.be.a('number');
    expect(status.lag).to.be.a('string');
    expect(status.retainedWalBytes).to.be.a('number');
    expect(status.retainedWal).to.match(/B$/);
    expect(status.transformsHash).to.match(/^[0-9a-f]{64}$/);
    const phases = (await events(rig, namespace, 'orders')).map((e) => e.reason);
    expect(phases).to.include.members(['Preparing', 'Bootstrapping', 'WaitingForCompletion', 'Streaming']);
  });

  it('when suspended, keeps the slot and shows the WAL piling up, read from the source', async function () {
    // Suspension scales the pods to zero; here the test stops the processes that play them.
    await patchPipeline(rig, namespace, 'orders', { spec: { suspend: true } });
    await translicator?.stop();
    await changeStream?.stop();
    translicator = undefined;
    changeStream = undefined;
    const first = await waitForStatus(rig, namespace, 'orders', 'Suspended', (s) => s.phase === 'Suspended');
    const before = first.retainedWalBytes ?? 0;
    await servers.source!.query(
      `INSERT INTO public.users SELECT g, 'more' || g || '@example.com', repeat('x', 500) FROM generate_series(${ROWS + 2}, ${ROWS + 5000}) g`,
    );
    const after = await waitForStatus(
      rig,
      namespace,
      'orders',
      'more retained WAL',
      (s) => (s.retainedWalBytes ?? 0) > before + 1_000_000,
    );
    expect(after.phase).to.equal('Suspended');
    const slots = await servers.source!.query(
      "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'kasho_slot'",
    );
    expect(slots).to.have.length(1);
  });

  it('drops the slot and the publication on the source when deleted', async function () {
    await deletePipeline(rig, namespace, 'orders');
    await eventually('the pipeline to be gone', async () =>
      (await pipelineExists(rig, namespace, 'orders')) ? undefined : true,
    );
    const slots = await servers.source!.query(
      "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'kasho_slot'",
    );
    expect(slots).to.have.length(0);
    const publications = await servers.source!.query(
      "SELECT 1 FROM pg_publication WHERE pubname = 'kasho_pub'",
    );
    expect(publications).to.have.length(0);
    const cleaned = (await events(rig, namespace, 'orders')).find((e) => e.reason === 'SourceCleaned');
    expect(cleaned?.message).to.equal('Dropped slot kasho_slot and publication kasho_pub on the source');
  });
});
