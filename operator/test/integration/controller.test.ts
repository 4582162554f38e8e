import { expect } from 'chai';
import type { V1OwnerReference } from '@kubernetes/client-node';
import { buildKubeTools } from '../../../hack/testing/kube-apiserver.js';
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
  kubectl,
  patchPipeline,
  pipelineExists,
  startRig,
  testLogger,
  waitForJob,
  waitForStatus,
  type Rig,
} from './support.js';

const transforms = 'version: v1\ntables:\n  public.users:\n    email: FakeEmail\n';
const PASSWORD = 'p@ss/w:rd?#%';

function spec(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    image: 'registry.example/kasho:1.2.3',
    source: { secretName: 'source-db', superuser: { secretName: 'source-su' } },
    target: { secretName: 'target-db', urlKey: 'url' },
    transforms: { inline: transforms },
    ...extra,
  };
}

function expectOwnedBy(owners: V1OwnerReference[] | undefined, name: string, uid: string): void {
  expect(owners, 'ownerReferences').to.have.length(1);
  expect(owners?.[0]).to.deep.include({
    apiVersion: 'kasho.io/v1alpha1',
    kind: 'KashoPipeline',
    name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  });
}

describe('operator controller on a real API server', function () {
  this.timeout(120_000);
  let rig: Rig;
  let namespace: string;
  let controller: Controller;

  before(async function () {
    this.timeout(30 * 60_000);
    await buildKubeTools();
    rig = await startRig();
    namespace = await createNamespace(rig, 'ctl');
    // The source's host does not resolve: deletion meets an unreachable source.
    await createSecret(rig, namespace, 'source-db', {
      host: 'source.invalid',
      port: '5432',
      dbname: 'app',
      username: 'kasho',
      password: PASSWORD,
    });
    await createSecret(rig, namespace, 'source-su', { username: 'postgres', password: 'su-secret' });
    await createSecret(rig, namespace, 'target-db', {
      url: 'postgresql://kasho:target-secret@target.invalid:5432/app',
    });
    controller = new Controller({
      kubeConfig: rig.kubeConfig,
      namespaces: [namespace],
      defaultImage: 'kasho:test',
      pollIntervalMs: 300,
      identity: 'test-operator',
      logger: testLogger,
      // Nothing runs the pods: the change-stream never answers, and neither does the translicator.
      changeStreamAddress: () => '127.0.0.1:1',
      translicatorMetrics: httpTranslicatorMetricsReader(() => 'http://127.0.0.1:1/metrics'),
      grpcTimeoutMs: 1000,
    });
    await controller.start();
  });

  after(async function () {
    await controller?.stop();
    await rig?.server.stop();
  });

  it('adds its finalizer, creates the config children and the preparation Job, and reports Preparing', async function () {
    const created = await createPipeline(rig, namespace, 'orders', spec());
    const uid = created.metadata.uid ?? '';
    const status = await waitForStatus(
      rig,
      namespace,
      'orders',
      'phase Preparing',
      (s) => s.phase === 'Preparing',
    );
    expect(status.conditions?.find((c) => c.type === 'Prepared')).to.deep.include({
      status: 'False',
      reason: 'JobRunning',
    });
    expect(status.observedGeneration).to.equal(1);
    expect((await getPipeline(rig, namespace, 'orders')).metadata.finalizers).to.deep.equal([
      'kasho.io/source-cleanup',
    ]);

    const job = await waitForJob(rig, namespace, 'orders-prepare');
    expectOwnedBy(job.metadata?.ownerReferences, 'orders', uid);
    expect(job.spec?.backoffLimit).to.equal(2);
    const pod = job.spec?.template.spec;
    expect(pod?.restartPolicy).to.equal('Never');
    expect(pod?.containers[0]?.command).to.deep.equal(['/app/scripts/prepare-primary-db.sh']);
    expect(pod?.containers[0]?.args).to.deep.equal(['--publication', 'kasho_pub', '--skip-replica']);
    expect(pod?.containers[0]?.image).to.equal('registry.example/kasho:1.2.3');

    const configMap = await rig.core.readNamespacedConfigMap({ namespace, name: 'orders-transforms' });
    expect(configMap.data).to.deep.equal({ 'transforms.yml': transforms });
    expectOwnedBy(configMap.metadata?.ownerReferences, 'orders', uid);
    const connection = await rig.core.readNamespacedSecret({ namespace, name: 'orders-connection' });
    expectOwnedBy(connection.metadata?.ownerReferences, 'orders', uid);
    const url = Buffer.from(connection.data?.PRIMARY_DATABASE_URL ?? '', 'base64').toString();
    // The password, with every URL delimiter in it, survives the trip through the URL.
    expect(decodeURIComponent(new URL(url).password)).to.equal(PASSWORD);
    expect(new URL(url).host).to.equal('source.invalid:5432');
    expect(Buffer.from(connection.data?.KV_URL ?? '', 'base64').toString()).to.equal(
      'redis://orders-redis:6379',
    );
    const transformSecret = await rig.core.readNamespacedSecret({
      namespace,
      name: 'orders-transform-secret',
    });
    expect(Buffer.from(transformSecret.data?.secret ?? '', 'base64').toString()).to.have.length.greaterThan(
      30,
    );
    expectOwnedBy(transformSecret.metadata?.ownerReferences, 'orders', uid);

    // Nothing past the preparation exists yet.
    const deployments = await rig.apps.listNamespacedDeployment({ namespace });
    expect(deployments.items).to.have.length(0);
  });

  it('moves on when the preparation Job succeeds: Redis and pg-change-stream, each owned by the pipeline', async function () {
    const uid = (await getPipeline(rig, namespace, 'orders')).metadata.uid ?? '';
    await finishJob(rig, namespace, 'orders-prepare', 'Complete');
    const status = await waitForStatus(
      rig,
      namespace,
      'orders',
      'Prepared and waiting for the change-stream',
      (s) => s.conditions?.find((c) => c.type === 'Ready')?.reason === 'ChangeStreamStarting',
    );
    expect(status.phase).to.equal('Preparing');
    expect(status.conditions?.find((c) => c.type === 'Prepared')).to.deep.include({
      status: 'True',
      reason: 'JobSucceeded',
    });
    const deployment = await eventually('the change-stream Deployment', () =>
      rig.apps.readNamespacedDeployment({ namespace, name: 'orders-change-stream' }).catch(() => undefined),
    );
    expectOwnedBy(deployment.metadata?.ownerReferences, 'orders', uid);
    expect(deployment.metadata?.managedFields?.map((f) => f.manager)).to.include('kasho-operator');
    expect(deployment.spec?.replicas).to.equal(1);
    expect(deployment.spec?.strategy?.type).to.equal('Recreate');
    const service = await rig.core.readNamespacedService({ namespace, name: 'orders-change-stream' });
    expect(service.spec?.ports?.map((p) => [p.name, p.port])).to.deep.equal([
      ['grpc', 8080],
      ['http', 9090],
    ]);
    expectOwnedBy(service.metadata?.ownerReferences, 'orders', uid);
    const redis = await rig.apps.readNamespacedStatefulSet({ namespace, name: 'orders-redis' });
    expectOwnedBy(redis.metadata?.ownerReferences, 'orders', uid);
    expect(redis.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests).to.deep.equal({
      storage: '1Gi',
    });
    const redisService = await rig.core.readNamespacedService({ namespace, name: 'orders-redis' });
    expect(redisService.spec?.clusterIP).to.equal('None');

    const reasons = (await events(rig, namespace, 'orders')).map((e) => e.reason);
    expect(reasons).to.include.members(['Preparing', 'Created', 'Prepared']);
  });

  it('updates only what a spec change touches, without recreating anything', async function () {
    const before = {
      configMap: await rig.core.readNamespacedConfigMap({ namespace, name: 'orders-transforms' }),
      deployment: await rig.apps.readNamespacedDeployment({ namespace, name: 'orders-change-stream' }),
      redis: await rig.apps.readNamespacedStatefulSet({ namespace, name: 'orders-redis' }),
      secret: await rig.core.readNamespacedSecret({ namespace, name: 'orders-transform-secret' }),
    };
    const changed = `${transforms}    name: FakeName\n`;
    await patchPipeline(rig, namespace, 'orders', {
      spec: {
        transforms: { inline: changed },
        changeStream: { env: [{ name: 'LOG_LEVEL', value: 'debug' }] },
      },
    });
    const configMap = await eventually('the new transforms', async () => {
      const current = await rig.core.readNamespacedConfigMap({ namespace, name: 'orders-transforms' });
      return current.data?.['transforms.yml'] === changed ? current : undefined;
    });
    expect(configMap.metadata?.uid).to.equal(before.configMap.metadata?.uid);
    const deployment = await eventually('the new env', async () => {
      const current = await rig.apps.readNamespacedDeployment({ namespace, name: 'orders-change-stream' });
      const env = current.spec?.template.spec?.containers[0]?.env ?? [];
      return env.some((e) => e.name === 'LOG_LEVEL' && e.value === 'debug') ? current : undefined;
    });
    expect(deployment.metadata?.uid).to.equal(before.deployment.metadata?.uid);
    expect(deployment.metadata?.generation).to.equal((before.deployment.metadata?.generation ?? 0) + 1);
    await waitForStatus(rig, namespace, 'orders', 'observedGeneration 2', (s) => s.observedGeneration === 2);
    const redis = await rig.apps.readNamespacedStatefulSet({ namespace, name: 'orders-redis' });
    expect(redis.metadata?.uid).to.equal(before.redis.metadata?.uid);
    expect(redis.metadata?.generation).to.equal(before.redis.metadata?.generation);
    // The generated transform secret is never regenerated.
    const secret = await rig.core.readNamespacedSecret({ namespace, name: 'orders-transform-secret' });
    expect(secret.data).to.deep.equal(before.secret.data);
    expect(secret.metadata?.resourceVersion).to.equal(before.secret.metadata?.resourceVersion);
  });

  it('scales the services to zero when suspended', async function () {
    await patchPipeline(rig, namespace, 'orders', { spec: { suspend: true } });
    await waitForStatus(rig, namespace, 'orders', 'phase Suspended', (s) => s.phase === 'Suspended');
    const deployment = await rig.apps.readNamespacedDeployment({ namespace, name: 'orders-change-stream' });
    expect(deployment.spec?.replicas).to.equal(0);
    await patchPipeline(rig, namespace, 'orders', { spec: { suspend: false } });
    await waitForStatus(rig, namespace, 'orders', 'phase Preparing again', (s) => s.phase === 'Preparing');
    const resumed = await rig.apps.readNamespacedDeployment({ namespace, name: 'orders-change-stream' });
    expect(resumed.spec?.replicas).to.equal(1);
  });

  it('reports Failed with the Job and its reason when the preparation fails, and retries when the Job is deleted', async function () {
    await createPipeline(rig, namespace, 'broken', spec());
    const first = await waitForJob(rig, namespace, 'broken-prepare');
    await finishJob(rig, namespace, 'broken-prepare', 'Failed');
    const status = await waitForStatus(rig, namespace, 'broken', 'phase Failed', (s) => s.phase === 'Failed');
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    expect(ready?.reason).to.equal('PrepareJobFailed');
    expect(ready?.message).to.contain('Job broken-prepare failed: BackoffLimitExceeded');
    expect(status.lastError).to.contain('kubectl delete job broken-prepare');
    const warning = (await events(rig, namespace, 'broken')).find((e) => e.reason === 'Failed');
    expect(warning?.type).to.equal('Warning');

    await rig.batch.deleteNamespacedJob({
      namespace,
      name: 'broken-prepare',
      propagationPolicy: 'Background',
    });
    const second = await eventually('a new preparation Job', async () => {
      const job = await rig.batch
        .readNamespacedJob({ namespace, name: 'broken-prepare' })
        .catch(() => undefined);
      return job && job.metadata?.uid !== first.metadata?.uid ? job : undefined;
    });
    expect(second.metadata?.name).to.equal('broken-prepare');
    await waitForStatus(rig, namespace, 'broken', 'phase Preparing again', (s) => s.phase === 'Preparing');
  });

  it('reports Pending, naming the Secret and the key, when an input is missing', async function () {
    await createPipeline(rig, namespace, 'missing', {
      ...spec(),
      source: { secretName: 'nowhere' },
      target: { secretName: 'source-db', passwordKey: 'pw' },
    });
    const status = await waitForStatus(
      rig,
      namespace,
      'missing',
      'phase Pending',
      (s) => s.phase === 'Pending',
    );
    expect(status.lastError).to.contain('Secret "nowhere" (spec.source.secretName) was not found');
    expect(status.lastError).to.not.contain(PASSWORD);
    expect(status.conditions?.find((c) => c.type === 'Ready')?.reason).to.equal('InputsMissing');
    await createSecret(rig, namespace, 'nowhere', { url: 'postgresql://kasho:x@db.invalid/app' });
    await patchPipeline(rig, namespace, 'missing', {
      spec: { source: { secretName: 'nowhere', urlKey: 'url' } },
    });
    await waitForStatus(rig, namespace, 'missing', 'phase Preparing', (s) => s.phase === 'Preparing');
  });

  it('prints its story in kubectl get and describe', async function () {
    const wide = await kubectl(rig, ['get', 'kp', '-n', namespace, '-o', 'wide']);
    expect(wide.stdout).to.match(/orders\s+Preparing\s+/);
    expect(wide.stdout).to.match(/broken\s+\S+/);
    expect(wide.stdout).to.contain('ChangeStreamStarting');
    const describe = await kubectl(rig, ['describe', 'kp', 'orders', '-n', namespace]);
    expect(describe.stdout).to.contain('Phase:');
    expect(describe.stdout).to.match(/Normal\s+Prepared\s+/);
  });

  it('on deletion with reclaimPolicy Retain, warns that the slot stays and lets go', async function () {
    await patchPipeline(rig, namespace, 'broken', { spec: { reclaimPolicy: 'Retain' } });
    await waitForStatus(rig, namespace, 'broken', 'observedGeneration 2', (s) => s.observedGeneration === 2);
    await deletePipeline(rig, namespace, 'broken');
    await eventually('the pipeline to be gone', async () =>
      (await pipelineExists(rig, namespace, 'broken')) ? undefined : true,
    );
    const retained = (await events(rig, namespace, 'broken')).find((e) => e.reason === 'SourceRetained');
    expect(retained?.type).to.equal('Warning');
    expect(retained?.message).to.contain("pg_drop_replication_slot('kasho_slot')");
  });

  it('on deletion with reclaimPolicy Delete and an unreachable source, retries and waits for the annotation', async function () {
    await deletePipeline(rig, namespace, 'orders');
    const failure = await eventually('a cleanup failure event', async () =>
      (await events(rig, namespace, 'orders')).find((e) => e.reason === 'SourceCleanupFailed'),
    );
    expect(failure.type).to.equal('Warning');
    expect(failure.message).to.not.contain(PASSWORD);
    expect(failure.message).to.not.contain('su-secret');
    expect(await pipelineExists(rig, namespace, 'orders')).to.equal(true);
    const status = await waitForStatus(
      rig,
      namespace,
      'orders',
      'a counted attempt',
      (s) => (s.cleanup?.attempts ?? 0) >= 1,
    );
    expect(status.cleanup?.lastError).to.be.a('string');
    // Nothing may read the slot while it is dropped.
    const deployments = await rig.apps.listNamespacedDeployment({
      namespace,
      labelSelector: 'kasho.io/pipeline=orders',
    });
    expect(deployments.items).to.have.length(0);

    await patchPipeline(rig, namespace, 'orders', {
      metadata: { annotations: { 'kasho.io/skip-source-cleanup': 'true' } },
    });
    await eventually('the pipeline to be gone', async () =>
      (await pipelineExists(rig, namespace, 'orders')) ? undefined : true,
    );
    const skipped = (await events(rig, namespace, 'orders')).find((e) => e.reason === 'SourceCleanupSkipped');
    expect(skipped?.message).to.contain('kasho_slot');
  });
});
