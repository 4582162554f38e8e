/**
 * The heart of the operator, without I/O: from what was observed, the objects to apply, at most one action
 * (a gRPC call, a Job deletion, the source cleanup), the events, and the status that tells the story.
 * reconcile/outcome.ts folds an action's result back into the status.
 */
import { ANNOTATIONS, FINALIZER, type KashoPipeline } from '../api/pipeline.js';
import { CONDITION_TYPES, type Phase, type PipelineStatus } from '../api/schema.js';
import { parseLsn } from '@kasho/common/lsn';
import {
  bootstrapJob,
  changeStreamDeployment,
  changeStreamService,
  connectionSecret,
  generatedTransformSecret,
  preparationRequested,
  prepareJob,
  prepareSpecHash,
  redisService,
  redisStatefulSet,
  transformsConfigMap,
  translicatorDeployment,
  translicatorService,
  type BuildContext,
} from '../desired/objects.js';
import { changeStreamAddress, childNames } from '../desired/names.js';
import {
  conditionOf,
  formatBytes,
  formatSeconds,
  isTrue,
  setCondition,
  type ConditionUpdate,
} from './conditions.js';
import type { ChangeStreamStatus, JobObservation, Observed, Plan } from './observed.js';

/** Failed attempts at dropping the slot and publication before the event names the way out. */
export const CLEANUP_ATTEMPTS_BEFORE_HINT = 5;

/** Wait before the next attempt at dropping the slot and publication: 1 s, 2 s, 4 s, ... up to 5 minutes. */
export function cleanupRetryDelayMs(attempts: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempts - 1), 5 * 60_000);
}

class Story {
  readonly status: PipelineStatus;

  constructor(
    private readonly observed: Observed,
    readonly plan: Plan,
  ) {
    this.status = plan.status;
  }

  condition(update: ConditionUpdate): void {
    this.status.conditions = setCondition(
      this.status.conditions ?? [],
      update,
      this.observed.now,
      this.observed.pipeline.metadata.generation,
    );
  }

  /** Sets the phase and the Ready condition together: Ready's reason and message say why the phase is what it is. */
  phase(phase: Phase, reason: string, message: string): void {
    this.status.phase = phase;
    this.condition({ type: 'Ready', status: phase === 'Streaming' ? 'True' : 'False', reason, message });
    if (phase !== 'Degraded') {
      this.condition({ type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' });
    }
    this.status.lastError =
      phase === 'Failed' || phase === 'Degraded' || phase === 'Pending' ? message : undefined;
  }

  degraded(reason: string, message: string): void {
    this.phase('Degraded', reason, message);
    this.condition({ type: 'Degraded', status: 'True', reason, message });
  }

  event(type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.plan.events.push({ type, reason, message });
  }
}

function newPlan(observed: Observed): Plan {
  const status: PipelineStatus = structuredClone(observed.pipeline.status);
  status.observedGeneration = observed.pipeline.metadata.generation ?? status.observedGeneration;
  return {
    addFinalizer: false,
    removeFinalizer: false,
    apply: [],
    createIfAbsent: [],
    delete: [],
    removeAnnotations: [],
    events: [],
    status,
  };
}

const annotation = (pipeline: KashoPipeline, key: string) => pipeline.metadata.annotations?.[key];
/** An annotation counts as set unless its value says no, so `=true`, `=yes` and `=""` all work. */
const annotationSet = (pipeline: KashoPipeline, key: string) => {
  const value = annotation(pipeline, key);
  return value !== undefined && !/^(false|no|0)$/i.test(value.trim());
};

export function decide(observed: Observed): Plan {
  const plan = newPlan(observed);
  const story = new Story(observed, plan);
  const { pipeline } = observed;
  if (pipeline.metadata.deletionTimestamp) {
    decideDeletion(observed, story);
  } else {
    decideRunning(observed, story);
  }
  finishStory(observed, story);
  return plan;
}

function decideRunning(observed: Observed, story: Story): void {
  const { pipeline } = observed;
  const plan = story.plan;
  const status = story.status;
  if (!(pipeline.metadata.finalizers ?? []).includes(FINALIZER)) plan.addFinalizer = true;

  if (!observed.inputs.ok) {
    story.phase('Pending', 'InputsMissing', observed.inputs.problems.join('; '));
    return;
  }
  const inputs = observed.inputs.inputs;
  const ctx: BuildContext = { pipeline, inputs, defaultImage: observed.defaultImage };
  plan.apply.push(transformsConfigMap(ctx), connectionSecret(ctx));
  if (inputs.transformSecret.generated)
    plan.createIfAbsent.push(generatedTransformSecret(ctx, observed.randomSecret));
  status.transformSecretName = inputs.transformSecret.name;

  if (!decidePreparation(observed, story, ctx)) return;

  const names = childNames(pipeline.metadata.name);
  if (pipeline.spec.redis.managed) {
    plan.apply.push(redisStatefulSet(ctx), redisService(ctx));
  } else if (observed.managedRedisPresent) {
    plan.delete.push(
      { apiVersion: 'apps/v1', kind: 'StatefulSet', name: names.redis },
      { apiVersion: 'v1', kind: 'Service', name: names.redis },
    );
  }
  plan.apply.push(changeStreamDeployment(ctx), changeStreamService(ctx));

  const cs = observed.changeStream;
  const streamingNow = cs?.reachable === true && cs.status.state === 'STREAMING';
  if (isTrue(status.conditions, 'Bootstrapped') || streamingNow) {
    plan.apply.push(translicatorDeployment(ctx), translicatorService(ctx));
    status.transformsHash = inputs.transformsHash;
  }

  if (pipeline.spec.suspend) {
    decideSuspended(observed, story);
    return;
  }
  if (!cs || !cs.reachable) {
    const why = cs && !cs.reachable ? cs.error : 'not asked yet';
    if (isTrue(status.conditions, 'Bootstrapped')) {
      story.degraded(
        'ChangeStreamUnreachable',
        `pg-change-stream (${changeStreamAddress(pipeline)}) does not answer: ${why}`,
      );
    } else {
      story.phase(
        'Preparing',
        'ChangeStreamStarting',
        `Waiting for pg-change-stream (${changeStreamAddress(pipeline)}) to answer: ${why}`,
      );
    }
    applySlotObservation(observed, status);
    return;
  }
  recordChangeStream(observed, status, cs.status);

  if (annotationSet(pipeline, ANNOTATIONS.resetBootstrap)) {
    plan.action = { type: 'resetBootstrap', by: 'annotation' };
    story.phase(
      'Bootstrapping',
      'Resetting',
      'Resetting the bootstrap (annotation kasho.io/reset-bootstrap)',
    );
    return;
  }
  switch (cs.status.state) {
    case 'WAITING':
      decideWaiting(observed, story, ctx);
      break;
    case 'ACCUMULATING':
      decideAccumulating(observed, story);
      break;
    case 'STREAMING':
      decideStreaming(observed, story);
      break;
    default:
      story.degraded('ChangeStreamStateUnknown', 'pg-change-stream reports no bootstrap state');
  }
}

/** Returns true once the preparation is done (or not requested). */
function decidePreparation(observed: Observed, story: Story, ctx: BuildContext): boolean {
  const { pipeline } = observed;
  const status = story.status;
  if (!preparationRequested(pipeline)) {
    story.condition({
      type: 'Prepared',
      status: 'True',
      reason: 'NotRequested',
      message: 'spec.source.superuser is not set: the databases are expected to be prepared already',
    });
    return true;
  }
  const hash = prepareSpecHash(pipeline);
  const job = observed.prepareJob;
  const name = childNames(pipeline.metadata.name).prepareJob;
  if (status.prepare?.specHash === hash && isTrue(status.conditions, 'Prepared')) return true;

  if (job && job.specHash !== undefined && job.specHash !== hash) {
    story.plan.action = { type: 'deleteJob', name: job.name };
    story.condition({
      type: 'Prepared',
      status: 'False',
      reason: 'SettingsChanged',
      message: `The preparation settings changed: Job ${job.name} is deleted and runs again`,
    });
    story.phase('Preparing', 'SettingsChanged', `The preparation runs again with the new settings`);
    return false;
  }
  if (!job || job.phase === 'Running') {
    story.plan.createIfAbsent.push(prepareJob(ctx));
    const message = `Job ${name} prepares the source${pipeline.spec.target.superuser ? ' and the target' : ''} (scripts/prepare-primary-db.sh)`;
    story.condition({ type: 'Prepared', status: 'False', reason: 'JobRunning', message });
    story.phase('Preparing', 'PrepareJobRunning', message);
    status.prepare = { ...status.prepare, jobName: name };
    return false;
  }
  if (job.phase === 'Failed') {
    const message = `${jobFailure(job)}; fix the cause, then delete the Job to run it again: kubectl delete job ${job.name} -n ${pipeline.metadata.namespace}`;
    story.condition({ type: 'Prepared', status: 'False', reason: 'JobFailed', message });
    story.phase('Failed', 'PrepareJobFailed', message);
    return false;
  }
  status.prepare = {
    jobName: job.name,
    specHash: hash,
    completedAt: job.completionTime ?? observed.now.toISOString(),
  };
  story.condition({
    type: 'Prepared',
    status: 'True',
    reason: 'JobSucceeded',
    message: `Job ${job.name} prepared the databases`,
  });
  story.event('Normal', 'Prepared', `Job ${job.name} prepared the databases`);
  return true;
}

function jobFailure(job: JobObservation): string {
  const reason = job.reason ? `: ${job.reason}` : '';
  const message = job.message ? ` (${job.message})` : '';
  return `Job ${job.name} failed${reason}${message}`;
}

function decideSuspended(observed: Observed, story: Story): void {
  story.phase(
    'Suspended',
    'Suspended',
    'spec.suspend is true: pg-change-stream and pg-translicator are scaled to zero; the slot stays and keeps WAL on the source',
  );
  story.condition({
    type: 'Streaming',
    status: 'False',
    reason: 'Suspended',
    message: 'spec.suspend is true',
  });
  applySlotObservation(observed, story.status);
  story.status.lagSeconds = undefined;
  story.status.lag = undefined;
}

/** The source's own view of the slot, when the change-stream cannot give it. */
function applySlotObservation(observed: Observed, status: PipelineStatus): void {
  const slot = observed.sourceSlot;
  if (slot?.reachable && slot.exists && slot.retainedWalBytes !== undefined) {
    status.retainedWalBytes = slot.retainedWalBytes;
    status.retainedWal = formatBytes(slot.retainedWalBytes);
  }
}

function recordChangeStream(observed: Observed, status: PipelineStatus, cs: ChangeStreamStatus): void {
  if (cs.state !== 'UNKNOWN') status.changeStreamState = cs.state;
  status.startLsn = cs.startLsn || undefined;
  status.receivedLsn = cs.receivedLsn || undefined;
  status.confirmedLsn = cs.confirmedLsn || undefined;
  status.epoch = cs.epoch || undefined;
  status.retainedWalBytes = cs.retainedWalBytes;
  status.retainedWal = formatBytes(cs.retainedWalBytes);
  const metrics = observed.translicator;
  const applied = metrics?.appliedLsn || cs.acknowledgedLsn || undefined;
  status.appliedLsn = applied;
  let lagBytes = metrics?.lagBytes;
  if (lagBytes === undefined && cs.receivedLsn && applied) {
    const lag = parseLsn(cs.receivedLsn) - parseLsn(applied);
    lagBytes = lag > 0n ? Number(lag) : 0;
  }
  status.lagBytes = lagBytes;
  // Tenths of a second: finer would rewrite the status on every poll for noise.
  status.lagSeconds =
    metrics?.lagSeconds === undefined ? undefined : Math.round(metrics.lagSeconds * 10) / 10;
  const parts = [
    ...(status.lagSeconds !== undefined ? [formatSeconds(status.lagSeconds)] : []),
    ...(lagBytes !== undefined ? [formatBytes(lagBytes)] : []),
  ];
  status.lag = parts.length > 0 ? parts.join(', ') : undefined;
}

function bootstrappedFalse(story: Story, reason: string, message: string): void {
  story.condition({ type: 'Bootstrapped', status: 'False', reason, message });
  story.condition({
    type: 'Streaming',
    status: 'False',
    reason: 'NotBootstrapped',
    message: 'The bootstrap is not complete',
  });
}

function decideWaiting(observed: Observed, story: Story, ctx: BuildContext): void {
  const { pipeline } = observed;
  const { mode } = pipeline.spec.bootstrap;
  const ns = pipeline.metadata.namespace;
  const resetHint = `annotate the pipeline to start over: kubectl annotate kp ${pipeline.metadata.name} -n ${ns} ${ANNOTATIONS.resetBootstrap}=true`;
  if (isTrue(story.status.conditions, 'Bootstrapped')) {
    const message = `pg-change-stream is WAITING although the bootstrap had completed: its slot is gone; ${resetHint}`;
    story.condition({ type: 'Streaming', status: 'False', reason: 'SlotLost', message });
    story.degraded('SlotLost', message);
    return;
  }
  if (mode === 'skip') {
    story.plan.action = { type: 'startBootstrapWithoutSnapshot' };
    bootstrappedFalse(
      story,
      'Starting',
      'bootstrap.mode is skip: streaming starts from now, without a snapshot',
    );
    story.phase(
      'Bootstrapping',
      'StartingWithoutSnapshot',
      'Creating the slot; no existing data is copied (bootstrap.mode skip)',
    );
    return;
  }
  if (mode === 'manual') {
    const message = `bootstrap.mode is manual: run scripts/bootstrap-kasho.sh against ${changeStreamAddress(pipeline)}, then annotate ${ANNOTATIONS.completeBootstrap}=true`;
    bootstrappedFalse(story, 'AwaitingManualBootstrap', message);
    story.phase('Bootstrapping', 'AwaitingManualBootstrap', message);
    return;
  }
  const job = observed.bootstrapJob;
  const status = story.status;
  if (!job || job.phase === 'Running') {
    story.plan.createIfAbsent.push(bootstrapJob(ctx));
    const name = childNames(pipeline.metadata.name).bootstrapJob;
    status.bootstrap = {
      ...status.bootstrap,
      jobName: name,
      startedAt: job?.startTime ?? status.bootstrap?.startedAt,
    };
    const message = `Job ${name} is starting the bootstrap (${pipeline.spec.bootstrap.method})`;
    bootstrappedFalse(story, 'JobRunning', message);
    story.phase('Bootstrapping', 'BootstrapJobRunning', message);
    return;
  }
  if (job.phase === 'Failed') {
    bootstrapFailed(observed, story, job);
    return;
  }
  const message = `Job ${job.name} succeeded but pg-change-stream is WAITING (the slot is gone); ${resetHint}`;
  bootstrappedFalse(story, 'SlotLost', message);
  story.phase('Failed', 'BootstrapLost', message);
}

function bootstrapFailed(observed: Observed, story: Story, job: JobObservation): void {
  const { pipeline } = observed;
  const message = `${jobFailure(job)}; fix the cause, then delete the Job to run it again (kubectl delete job ${job.name} -n ${pipeline.metadata.namespace}) or annotate ${ANNOTATIONS.resetBootstrap}=true`;
  bootstrappedFalse(story, 'JobFailed', message);
  story.phase('Failed', 'BootstrapJobFailed', message);
}

function recordProgress(observed: Observed, story: Story, cs: ChangeStreamStatus): void {
  const job = observed.bootstrapJob;
  story.status.bootstrap = {
    ...story.status.bootstrap,
    ...(job ? { jobName: job.name } : {}),
    ...(job?.startTime ? { startedAt: job.startTime } : {}),
    ...(job?.phase === 'Succeeded' ? { finishedAt: job.completionTime ?? observed.now.toISOString() } : {}),
    rows: cs.bootstrapChanges,
    accumulatedChanges: cs.accumulatedChanges,
  };
}

function decideAccumulating(observed: Observed, story: Story): void {
  const { pipeline } = observed;
  const cs = (observed.changeStream as { status: ChangeStreamStatus }).status;
  const { mode } = pipeline.spec.bootstrap;
  const annotated = annotationSet(pipeline, ANNOTATIONS.completeBootstrap);
  recordProgress(observed, story, cs);
  const loaded = `${cs.bootstrapChanges} snapshot rows loaded, ${cs.accumulatedChanges} changes accumulated meanwhile`;

  if (mode === 'skip') {
    story.plan.action = { type: 'completeBootstrap', by: 'skip' };
    bootstrappedFalse(story, 'Completing', 'Starting to stream (bootstrap.mode skip)');
    story.phase('Bootstrapping', 'Completing', 'Starting to stream (bootstrap.mode skip)');
    return;
  }
  if (mode === 'manual') {
    if (annotated) {
      story.plan.action = { type: 'completeBootstrap', by: 'annotation' };
      bootstrappedFalse(story, 'Completing', `Completing the bootstrap (annotation): ${loaded}`);
      story.phase('WaitingForCompletion', 'Completing', `Completing the bootstrap: ${loaded}`);
      return;
    }
    const message = `pg-change-stream is ACCUMULATING (${loaded}); when your load has finished, annotate ${ANNOTATIONS.completeBootstrap}=true`;
    bootstrappedFalse(story, 'AwaitingCompletion', message);
    story.phase('WaitingForCompletion', 'AwaitingCompletion', message);
    return;
  }

  const job = observed.bootstrapJob;
  const status = story.status;
  if (!job) {
    if (status.bootstrap?.finishedAt === undefined) {
      // ACCUMULATING without our Job: a deleted Job (a retry) or a load someone else began. Start over cleanly.
      story.plan.action = { type: 'resetBootstrap', by: 'rerun' };
      bootstrappedFalse(
        story,
        'Restarting',
        'The bootstrap Job is gone before it finished: resetting to run it again',
      );
      story.phase(
        'Bootstrapping',
        'RestartingBootstrap',
        'The bootstrap Job is gone before it finished: running it again',
      );
      return;
    }
  } else if (job.phase === 'Running') {
    const message = `Job ${job.name} is loading the snapshot: ${loaded}`;
    bootstrappedFalse(story, 'Loading', message);
    story.phase('Bootstrapping', 'BootstrapJobRunning', message);
    return;
  } else if (job.phase === 'Failed') {
    bootstrapFailed(observed, story, job);
    return;
  }
  const autoComplete = pipeline.spec.bootstrap.autoComplete ?? true;
  if (autoComplete || annotated) {
    story.plan.action = { type: 'completeBootstrap', by: annotated ? 'annotation' : 'autoComplete' };
    bootstrappedFalse(story, 'Completing', `Completing the bootstrap: ${loaded}`);
    story.phase('WaitingForCompletion', 'Completing', `Completing the bootstrap: ${loaded}`);
    return;
  }
  const message = `The snapshot is loaded (${loaded}); start streaming with: kubectl annotate kp ${pipeline.metadata.name} -n ${pipeline.metadata.namespace} ${ANNOTATIONS.completeBootstrap}=true`;
  bootstrappedFalse(story, 'AwaitingCompletion', message);
  story.phase('WaitingForCompletion', 'AwaitingCompletion', message);
}

function decideStreaming(observed: Observed, story: Story): void {
  const { pipeline } = observed;
  const status = story.status;
  const cs = (observed.changeStream as { status: ChangeStreamStatus }).status;
  if (!isTrue(status.conditions, 'Bootstrapped')) {
    story.condition({
      type: 'Bootstrapped',
      status: 'True',
      reason: 'Completed',
      message: `pg-change-stream is STREAMING${status.bootstrap?.completedBy ? ` (completed by ${status.bootstrap.completedBy})` : ''}`,
    });
    status.bootstrap = {
      ...status.bootstrap,
      completedAt: status.bootstrap?.completedAt ?? observed.now.toISOString(),
    };
  }
  if (annotation(pipeline, ANNOTATIONS.completeBootstrap) !== undefined) {
    story.plan.removeAnnotations.push(ANNOTATIONS.completeBootstrap);
    story.event(
      'Normal',
      'AlreadyStreaming',
      `${ANNOTATIONS.completeBootstrap} removed: the bootstrap is already complete`,
    );
  }
  const translicatorUp = observed.translicator !== undefined;
  const wasStreaming = isTrue(status.conditions, 'Streaming');
  if (cs.lastError) {
    story.condition({
      type: 'Streaming',
      status: wasStreaming ? 'True' : 'False',
      reason: 'ChangeStreamError',
      message: cs.lastError,
    });
    story.degraded('ChangeStreamError', `pg-change-stream reports: ${cs.lastError}`);
    return;
  }
  if (!translicatorUp) {
    const address = `${childNames(pipeline.metadata.name).translicator}`;
    if (wasStreaming) {
      const message = `pg-translicator (${address}) does not answer on /metrics`;
      story.condition({ type: 'Streaming', status: 'False', reason: 'TranslicatorUnavailable', message });
      story.degraded('TranslicatorUnavailable', message);
    } else {
      const message = `pg-change-stream is STREAMING; waiting for pg-translicator (${address}) to start`;
      story.condition({ type: 'Streaming', status: 'False', reason: 'TranslicatorStarting', message });
      story.phase('Bootstrapping', 'TranslicatorStarting', message);
    }
    return;
  }
  const message = `Applying changes to the target${status.lag ? `; lag ${status.lag}` : ''}`;
  story.condition({ type: 'Streaming', status: 'True', reason: 'Streaming', message });
  story.phase('Streaming', 'Streaming', message);
}

function decideDeletion(observed: Observed, story: Story): void {
  const { pipeline } = observed;
  const plan = story.plan;
  if (!(pipeline.metadata.finalizers ?? []).includes(FINALIZER)) return;
  const { slot, publication, reclaimPolicy } = pipeline.spec;
  const names = childNames(pipeline.metadata.name);
  story.status.phase = story.status.phase === 'Failed' ? 'Failed' : story.status.phase;
  if (reclaimPolicy === 'Retain') {
    plan.removeFinalizer = true;
    story.event(
      'Warning',
      'SourceRetained',
      `reclaimPolicy Retain: slot ${slot} and publication ${publication} stay on the source, and the slot keeps WAL until dropped: SELECT pg_drop_replication_slot('${slot}'); DROP PUBLICATION ${publication};`,
    );
    return;
  }
  if (!observed.connectionSecretPresent) {
    plan.removeFinalizer = true;
    story.event('Normal', 'NothingToClean', 'The pipeline never reached the source: nothing to drop there');
    return;
  }
  // Nothing may read the slot while it is dropped.
  plan.delete.push(
    { apiVersion: 'apps/v1', kind: 'Deployment', name: names.translicator },
    { apiVersion: 'apps/v1', kind: 'Deployment', name: names.changeStream },
  );
  if (annotationSet(pipeline, ANNOTATIONS.skipSourceCleanup)) {
    plan.removeFinalizer = true;
    story.event(
      'Warning',
      'SourceCleanupSkipped',
      `${ANNOTATIONS.skipSourceCleanup} is set: slot ${slot} and publication ${publication} may remain on the source; drop them there: SELECT pg_drop_replication_slot('${slot}'); DROP PUBLICATION ${publication};`,
    );
    return;
  }
  const cleanup = story.status.cleanup;
  if (cleanup?.attempts && cleanup.lastAttemptAt) {
    const due = Date.parse(cleanup.lastAttemptAt) + cleanupRetryDelayMs(cleanup.attempts);
    if (due > observed.now.getTime()) {
      plan.requeueAfterMs = due - observed.now.getTime();
      return;
    }
  }
  plan.action = { type: 'cleanupSource', slot, publication };
}

/** Every condition present from the start, so `kubectl describe` and `kubectl wait` always find it. */
function fillConditions(story: Story): void {
  for (const type of CONDITION_TYPES) {
    if (!conditionOf(story.status.conditions, type)) {
      story.condition({ type, status: 'Unknown', reason: 'NotReached', message: 'Not reached yet' });
    }
  }
}

/** Events for phase changes, so `kubectl describe` shows every transition. */
function finishStory(observed: Observed, story: Story): void {
  if (!observed.pipeline.metadata.deletionTimestamp) fillConditions(story);
  const before = observed.pipeline.status.phase;
  const after = story.status.phase;
  if (after !== undefined && after !== before) {
    const ready = conditionOf(story.status.conditions, 'Ready');
    const type = after === 'Failed' || after === 'Degraded' ? 'Warning' : 'Normal';
    story.event(type, after, ready?.message || `Phase ${after}`);
  }
}
