import { expect } from 'chai';
import type { PipelineStatus } from '../../../src/api/schema.js';
import { resolveInputs } from '../../../src/desired/inputs.js';
import { decide } from '../../../src/reconcile/decide.js';
import type { Observed, Plan } from '../../../src/reconcile/observed.js';
import { NOW, baseSpec, csStatus, job, observed, pipeline, preparedStatus, referenced } from '../fixtures.js';

const kinds = (objects: Plan['apply']) => objects.map((o) => `${o.kind}/${o.metadata?.name}`);
const condition = (status: PipelineStatus, type: string) => status.conditions?.find((c) => c.type === type);
const ready = (plan: Plan) => condition(plan.status, 'Ready');
const reachable = (state: Parameters<typeof csStatus>[0], extra: Parameters<typeof csStatus>[1] = {}) =>
  ({ reachable: true, status: csStatus(state, extra) }) as const;

interface Row {
  world: string;
  observed: () => Observed;
  expect: (plan: Plan) => void;
}

const prepared = preparedStatus();
const bootstrapped = preparedStatus({ bootstrapped: true });
const streaming = preparedStatus({ bootstrapped: true, streaming: true });

const table: Row[] = [
  {
    world: 'a new pipeline without the finalizer',
    observed: () => observed(pipeline(baseSpec(), { finalizers: [] })),
    expect: (plan) => expect(plan.addFinalizer).to.equal(true),
  },
  {
    world: 'a Secret is missing',
    observed: () => {
      const p = pipeline();
      return observed(p, { inputs: resolveInputs(p, referenced({ 'source-db': undefined })) });
    },
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Pending');
      expect(ready(plan)).to.deep.include({ status: 'False', reason: 'InputsMissing' });
      expect(plan.status.lastError).to.contain('Secret "source-db"');
      expect(plan.apply).to.deep.equal([]);
      expect(plan.createIfAbsent).to.deep.equal([]);
    },
  },
  {
    world: 'nothing prepared yet',
    observed: () => observed(pipeline()),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Preparing');
      expect(ready(plan)?.reason).to.equal('PrepareJobRunning');
      expect(kinds(plan.apply)).to.deep.equal(['ConfigMap/orders-transforms', 'Secret/orders-connection']);
      expect(kinds(plan.createIfAbsent)).to.deep.equal([
        'Secret/orders-transform-secret',
        'Job/orders-prepare',
      ]);
      expect(plan.events.map((e) => e.reason)).to.deep.equal(['Preparing']);
    },
  },
  {
    world: 'the preparation Job is running (a pod failed and is retried)',
    observed: () => observed(pipeline(), { prepareJob: job('orders-prepare', 'Running') }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Preparing');
      expect(condition(plan.status, 'Prepared')).to.deep.include({ status: 'False', reason: 'JobRunning' });
    },
  },
  {
    world: 'the preparation Job failed for good',
    observed: () =>
      observed(pipeline(baseSpec(), { status: { phase: 'Preparing' } }), {
        prepareJob: job('orders-prepare', 'Failed', {
          reason: 'BackoffLimitExceeded',
          message: 'limit reached',
        }),
      }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Failed');
      expect(ready(plan)?.reason).to.equal('PrepareJobFailed');
      expect(plan.status.lastError).to.match(
        /^Job orders-prepare failed: BackoffLimitExceeded \(limit reached\)/,
      );
      expect(plan.events).to.deep.include({
        type: 'Warning',
        reason: 'Failed',
        message: plan.status.lastError,
      });
    },
  },
  {
    world: 'the preparation Job succeeded and the change-stream does not answer yet',
    observed: () =>
      observed(pipeline(), {
        prepareJob: job('orders-prepare', 'Succeeded', { completionTime: NOW.toISOString() }),
        changeStream: { reachable: false, error: 'connection refused' },
      }),
    expect: (plan) => {
      expect(condition(plan.status, 'Prepared')).to.deep.include({ status: 'True', reason: 'JobSucceeded' });
      expect(plan.events.map((e) => e.reason)).to.include('Prepared');
      expect(kinds(plan.apply)).to.deep.equal([
        'ConfigMap/orders-transforms',
        'Secret/orders-connection',
        'StatefulSet/orders-redis',
        'Service/orders-redis',
        'Deployment/orders-change-stream',
        'Service/orders-change-stream',
      ]);
      expect(plan.status.phase).to.equal('Preparing');
      expect(ready(plan)?.message).to.contain('connection refused');
    },
  },
  {
    world: 'the preparation settings changed after it succeeded',
    observed: () =>
      observed(pipeline(baseSpec({ publication: 'other_pub' }), { status: prepared }), {
        prepareJob: job('orders-prepare', 'Succeeded', { specHash: 'old' }),
      }),
    expect: (plan) => {
      expect(plan.action).to.deep.equal({ type: 'deleteJob', name: 'orders-prepare' });
      expect(condition(plan.status, 'Prepared')?.reason).to.equal('SettingsChanged');
    },
  },
  {
    world: 'no superuser: nothing to prepare',
    observed: () =>
      observed(pipeline(baseSpec({ source: { secretName: 'source-db' } })), {
        changeStream: reachable('WAITING'),
      }),
    expect: (plan) => {
      expect(condition(plan.status, 'Prepared')).to.deep.include({ status: 'True', reason: 'NotRequested' });
      expect(kinds(plan.createIfAbsent)).to.include('Job/orders-bootstrap');
    },
  },
  {
    world: 'WAITING, mode auto, no bootstrap Job yet',
    observed: () =>
      observed(pipeline(baseSpec(), { status: prepared }), { changeStream: reachable('WAITING') }),
    expect: (plan) => {
      expect(kinds(plan.createIfAbsent)).to.include('Job/orders-bootstrap');
      expect(plan.status.phase).to.equal('Bootstrapping');
      expect(plan.status.changeStreamState).to.equal('WAITING');
      expect(kinds(plan.apply)).to.not.include('Deployment/orders-translicator');
    },
  },
  {
    world: 'WAITING, the bootstrap Job failed',
    observed: () =>
      observed(pipeline(baseSpec(), { status: prepared }), {
        changeStream: reachable('WAITING'),
        bootstrapJob: job('orders-bootstrap', 'Failed', { reason: 'DeadlineExceeded' }),
      }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Failed');
      expect(ready(plan)?.reason).to.equal('BootstrapJobFailed');
      expect(plan.status.lastError).to.contain('Job orders-bootstrap failed: DeadlineExceeded');
      expect(plan.createIfAbsent.map((o) => o.kind)).to.not.include('Job');
    },
  },
  {
    world: 'WAITING, mode manual',
    observed: () =>
      observed(pipeline(baseSpec({ bootstrap: { mode: 'manual' } }), { status: prepared }), {
        changeStream: reachable('WAITING'),
      }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Bootstrapping');
      expect(ready(plan)?.reason).to.equal('AwaitingManualBootstrap');
      expect(kinds(plan.createIfAbsent)).to.not.include('Job/orders-bootstrap');
    },
  },
  {
    world: 'WAITING, mode skip',
    observed: () =>
      observed(pipeline(baseSpec({ bootstrap: { mode: 'skip' } }), { status: prepared }), {
        changeStream: reachable('WAITING'),
      }),
    expect: (plan) => expect(plan.action).to.deep.equal({ type: 'startBootstrapWithoutSnapshot' }),
  },
  {
    world: 'ACCUMULATING while the bootstrap Job loads',
    observed: () =>
      observed(pipeline(baseSpec(), { status: prepared }), {
        changeStream: reachable('ACCUMULATING'),
        bootstrapJob: job('orders-bootstrap', 'Running'),
      }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Bootstrapping');
      expect(plan.status.bootstrap).to.deep.include({
        jobName: 'orders-bootstrap',
        rows: 300,
        accumulatedChanges: 5,
      });
      expect(plan.status.startLsn).to.equal('0/1900000');
      expect(plan.action).to.equal(undefined);
    },
  },
  {
    world: 'ACCUMULATING, the Job succeeded, autoComplete by default',
    observed: () =>
      observed(pipeline(baseSpec(), { status: prepared }), {
        changeStream: reachable('ACCUMULATING'),
        bootstrapJob: job('orders-bootstrap', 'Succeeded', { completionTime: NOW.toISOString() }),
      }),
    expect: (plan) => {
      expect(plan.action).to.deep.equal({ type: 'completeBootstrap', by: 'autoComplete' });
      expect(plan.status.bootstrap?.finishedAt).to.equal(NOW.toISOString());
    },
  },
  {
    world: 'ACCUMULATING, the Job succeeded, autoComplete false',
    observed: () =>
      observed(pipeline(baseSpec({ bootstrap: { autoComplete: false } }), { status: prepared }), {
        changeStream: reachable('ACCUMULATING'),
        bootstrapJob: job('orders-bootstrap', 'Succeeded'),
      }),
    expect: (plan) => {
      expect(plan.action).to.equal(undefined);
      expect(plan.status.phase).to.equal('WaitingForCompletion');
      expect(ready(plan)?.reason).to.equal('AwaitingCompletion');
      expect(ready(plan)?.message).to.contain(
        'kubectl annotate kp orders -n data kasho.io/complete-bootstrap=true',
      );
    },
  },
  {
    world: 'ACCUMULATING, the Job succeeded, autoComplete false, annotated',
    observed: () =>
      observed(
        pipeline(baseSpec({ bootstrap: { autoComplete: false } }), {
          status: prepared,
          annotations: { 'kasho.io/complete-bootstrap': 'true' },
        }),
        { changeStream: reachable('ACCUMULATING'), bootstrapJob: job('orders-bootstrap', 'Succeeded') },
      ),
    expect: (plan) => expect(plan.action).to.deep.equal({ type: 'completeBootstrap', by: 'annotation' }),
  },
  {
    world: 'ACCUMULATING, annotated with "false"',
    observed: () =>
      observed(
        pipeline(baseSpec({ bootstrap: { autoComplete: false } }), {
          status: prepared,
          annotations: { 'kasho.io/complete-bootstrap': 'false' },
        }),
        { changeStream: reachable('ACCUMULATING'), bootstrapJob: job('orders-bootstrap', 'Succeeded') },
      ),
    expect: (plan) => expect(plan.action).to.equal(undefined),
  },
  {
    world: 'ACCUMULATING, the bootstrap Job is gone before it finished',
    observed: () =>
      observed(pipeline(baseSpec(), { status: prepared }), { changeStream: reachable('ACCUMULATING') }),
    expect: (plan) => expect(plan.action).to.deep.equal({ type: 'resetBootstrap', by: 'rerun' }),
  },
  {
    world: 'ACCUMULATING, the Job was removed after it had finished',
    observed: () =>
      observed(
        pipeline(baseSpec(), {
          status: { ...prepared, bootstrap: { finishedAt: NOW.toISOString() } },
        }),
        { changeStream: reachable('ACCUMULATING') },
      ),
    expect: (plan) => expect(plan.action).to.deep.equal({ type: 'completeBootstrap', by: 'autoComplete' }),
  },
  {
    world: 'ACCUMULATING, mode manual, not annotated',
    observed: () =>
      observed(pipeline(baseSpec({ bootstrap: { mode: 'manual' } }), { status: prepared }), {
        changeStream: reachable('ACCUMULATING'),
      }),
    expect: (plan) => {
      expect(plan.action).to.equal(undefined);
      expect(plan.status.phase).to.equal('WaitingForCompletion');
    },
  },
  {
    world: 'ACCUMULATING, mode skip',
    observed: () =>
      observed(pipeline(baseSpec({ bootstrap: { mode: 'skip' } }), { status: prepared }), {
        changeStream: reachable('ACCUMULATING'),
      }),
    expect: (plan) => expect(plan.action).to.deep.equal({ type: 'completeBootstrap', by: 'skip' }),
  },
  {
    world: 'STREAMING with the translicator applying',
    observed: () =>
      observed(pipeline(baseSpec(), { status: bootstrapped }), {
        changeStream: reachable('STREAMING'),
        translicator: { lagSeconds: 1.5, lagBytes: 4096, appliedLsn: '0/19F0000' },
      }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Streaming');
      expect(ready(plan)).to.deep.include({ status: 'True', reason: 'Streaming' });
      expect(condition(plan.status, 'Streaming')?.status).to.equal('True');
      expect(condition(plan.status, 'Degraded')?.status).to.equal('False');
      expect(kinds(plan.apply)).to.include.members([
        'Deployment/orders-translicator',
        'Service/orders-translicator',
      ]);
      expect(plan.status).to.deep.include({
        changeStreamState: 'STREAMING',
        appliedLsn: '0/19F0000',
        confirmedLsn: '0/19F0000',
        lagBytes: 4096,
        lagSeconds: 1.5,
        lag: '1.5s, 4.0 KiB',
        retainedWalBytes: 2048,
        retainedWal: '2.0 KiB',
        lastError: undefined,
      });
      expect(plan.status.transformsHash).to.match(/^[0-9a-f]{64}$/);
    },
  },
  {
    world: 'STREAMING without translicator metrics: lag from the acknowledged position',
    observed: () =>
      observed(pipeline(baseSpec(), { status: bootstrapped }), {
        changeStream: reachable('STREAMING', { receivedLsn: '0/1A00000', acknowledgedLsn: '0/19F0000' }),
      }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Bootstrapping');
      expect(ready(plan)?.reason).to.equal('TranslicatorStarting');
      expect(plan.status.lagBytes).to.equal(0x10000);
      expect(plan.status.appliedLsn).to.equal('0/19F0000');
    },
  },
  {
    world: 'STREAMING, the translicator stopped answering after it had streamed',
    observed: () =>
      observed(pipeline(baseSpec(), { status: streaming }), { changeStream: reachable('STREAMING') }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Degraded');
      expect(condition(plan.status, 'Degraded')).to.deep.include({
        status: 'True',
        reason: 'TranslicatorUnavailable',
      });
      expect(plan.events).to.deep.include({
        type: 'Warning',
        reason: 'Degraded',
        message: ready(plan)?.message,
      });
    },
  },
  {
    world: 'STREAMING, the change-stream reports an error',
    observed: () =>
      observed(pipeline(baseSpec(), { status: streaming }), {
        changeStream: reachable('STREAMING', { lastError: 'replication connection lost' }),
        translicator: {},
      }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Degraded');
      expect(plan.status.lastError).to.equal('pg-change-stream reports: replication connection lost');
    },
  },
  {
    world: 'STREAMING with a leftover completion annotation',
    observed: () =>
      observed(
        pipeline(baseSpec(), { status: streaming, annotations: { 'kasho.io/complete-bootstrap': 'true' } }),
        {
          changeStream: reachable('STREAMING'),
          translicator: {},
        },
      ),
    expect: (plan) => {
      expect(plan.action).to.equal(undefined);
      expect(plan.removeAnnotations).to.deep.equal(['kasho.io/complete-bootstrap']);
      expect(plan.events.map((e) => e.reason)).to.include('AlreadyStreaming');
    },
  },
  {
    world: 'bootstrapped, the change-stream unreachable: retained WAL read on the source',
    observed: () =>
      observed(pipeline(baseSpec(), { status: streaming }), {
        changeStream: { reachable: false, error: 'UNAVAILABLE' },
        sourceSlot: { reachable: true, exists: true, active: false, retainedWalBytes: 3 * 1024 * 1024 },
      }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Degraded');
      expect(ready(plan)?.reason).to.equal('ChangeStreamUnreachable');
      expect(plan.status.retainedWal).to.equal('3.0 MiB');
      expect(kinds(plan.apply)).to.include('Deployment/orders-translicator');
    },
  },
  {
    world: 'WAITING although the bootstrap had completed (the slot is gone)',
    observed: () =>
      observed(pipeline(baseSpec(), { status: streaming }), { changeStream: reachable('WAITING') }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Degraded');
      expect(ready(plan)?.reason).to.equal('SlotLost');
      expect(ready(plan)?.message).to.contain('kasho.io/reset-bootstrap=true');
    },
  },
  {
    world: 'the reset annotation is set',
    observed: () =>
      observed(pipeline(baseSpec(), { status: prepared, annotations: { 'kasho.io/reset-bootstrap': '' } }), {
        changeStream: reachable('ACCUMULATING'),
        bootstrapJob: job('orders-bootstrap', 'Failed'),
      }),
    expect: (plan) => expect(plan.action).to.deep.equal({ type: 'resetBootstrap', by: 'annotation' }),
  },
  {
    world: 'suspended',
    observed: () =>
      observed(pipeline(baseSpec({ suspend: true }), { status: streaming }), {
        sourceSlot: {
          reachable: true,
          exists: true,
          active: false,
          retainedWalBytes: 5 * 1024 * 1024 * 1024,
        },
      }),
    expect: (plan) => {
      expect(plan.status.phase).to.equal('Suspended');
      expect(plan.status.retainedWal).to.equal('5.0 GiB');
      const deployments = plan.apply.filter((o) => o.kind === 'Deployment') as {
        spec?: { replicas?: number };
      }[];
      expect(deployments.map((d) => d.spec?.replicas)).to.deep.equal([0, 0]);
      expect(plan.action).to.equal(undefined);
    },
  },
  {
    world: 'switched to an external Redis while the managed one still exists',
    observed: () =>
      observed(pipeline(baseSpec({ redis: { external: { secretName: 'redis' } } }), { status: prepared }), {
        inputs: resolveInputs(
          pipeline(baseSpec({ redis: { external: { secretName: 'redis' } } })),
          referenced({ redis: { data: { url: 'redis://cache:6379' }, resourceVersion: '1' } }),
        ),
        managedRedisPresent: true,
      }),
    expect: (plan) => {
      expect(plan.delete).to.deep.equal([
        { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'orders-redis' },
        { apiVersion: 'v1', kind: 'Service', name: 'orders-redis' },
      ]);
      expect(kinds(plan.apply)).to.not.include('StatefulSet/orders-redis');
    },
  },
  {
    world: 'deleted with reclaimPolicy Retain',
    observed: () => observed(pipeline(baseSpec({ reclaimPolicy: 'Retain' }), { deleting: true })),
    expect: (plan) => {
      expect(plan.removeFinalizer).to.equal(true);
      expect(plan.action).to.equal(undefined);
      expect(plan.events[0]).to.deep.include({ type: 'Warning', reason: 'SourceRetained' });
    },
  },
  {
    world: 'deleted before it ever reached the source',
    observed: () => observed(pipeline(baseSpec(), { deleting: true }), { connectionSecretPresent: false }),
    expect: (plan) => {
      expect(plan.removeFinalizer).to.equal(true);
      expect(plan.events[0]?.reason).to.equal('NothingToClean');
    },
  },
  {
    world: 'deleted with reclaimPolicy Delete',
    observed: () => observed(pipeline(baseSpec(), { deleting: true })),
    expect: (plan) => {
      expect(plan.action).to.deep.equal({
        type: 'cleanupSource',
        slot: 'kasho_slot',
        publication: 'kasho_pub',
      });
      expect(plan.removeFinalizer).to.equal(false);
      expect(plan.delete.map((r) => r.name)).to.deep.equal(['orders-translicator', 'orders-change-stream']);
      expect(plan.apply).to.deep.equal([]);
    },
  },
  {
    world: 'deleted, the last cleanup attempt failed a moment ago',
    observed: () =>
      observed(
        pipeline(baseSpec(), {
          deleting: true,
          status: { cleanup: { attempts: 3, lastAttemptAt: new Date(NOW.getTime() - 1000).toISOString() } },
        }),
      ),
    expect: (plan) => {
      expect(plan.action).to.equal(undefined);
      expect(plan.requeueAfterMs).to.equal(3000);
    },
  },
  {
    world: 'deleted, the source unreachable, and the user lets go',
    observed: () =>
      observed(
        pipeline(baseSpec(), { deleting: true, annotations: { 'kasho.io/skip-source-cleanup': 'true' } }),
      ),
    expect: (plan) => {
      expect(plan.removeFinalizer).to.equal(true);
      expect(plan.action).to.equal(undefined);
      expect(plan.events[0]).to.deep.include({ type: 'Warning', reason: 'SourceCleanupSkipped' });
    },
  },
  {
    world: 'deleted, the finalizer already gone',
    observed: () => observed(pipeline(baseSpec(), { deleting: true, finalizers: [] })),
    expect: (plan) => {
      expect(plan.action).to.equal(undefined);
      expect(plan.removeFinalizer).to.equal(false);
      expect(plan.events).to.deep.equal([]);
    },
  },
];

describe('reconcile decisions: observed world → action and status', function () {
  for (const row of table) {
    it(row.world, function () {
      row.expect(decide(row.observed()));
    });
  }

  it("keeps a condition's lastTransitionTime while its status stays the same", function () {
    const first = decide(observed(pipeline()));
    const again = decide({
      ...observed(pipeline(baseSpec(), { status: first.status })),
      now: new Date(NOW.getTime() + 60_000),
    });
    expect(condition(again.status, 'Ready')?.lastTransitionTime).to.equal(NOW.toISOString());
    expect(again.events).to.deep.equal([]);
  });

  it('records the generation it acted on', function () {
    const plan = decide(observed(pipeline(baseSpec(), { generation: 7 })));
    expect(plan.status.observedGeneration).to.equal(7);
    expect(ready(plan)?.observedGeneration).to.equal(7);
  });
});
