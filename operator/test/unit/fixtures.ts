/** Pipelines and observations for the unit tests of the pure parts. */
import { parsePipeline, type KashoPipeline } from '../../src/api/pipeline.js';
import type { PipelineSpecInput, PipelineStatus } from '../../src/api/schema.js';
import { resolveInputs, type ObservedData, type ReferencedObjects } from '../../src/desired/inputs.js';
import { prepareSpecHash, type BuildContext } from '../../src/desired/objects.js';
import type { ChangeStreamStatus, JobObservation, Observed } from '../../src/reconcile/observed.js';

export const TRANSFORMS = 'version: v1\ntables:\n  public.users:\n    email: FakeEmail\n';
export const NOW = new Date('2026-11-25T10:00:00.000Z');

export function baseSpec(extra: Partial<PipelineSpecInput> = {}): PipelineSpecInput {
  return {
    image: 'kasho:1.0.0',
    source: { secretName: 'source-db', superuser: { secretName: 'source-su' } },
    target: { secretName: 'target-db', urlKey: 'url' },
    transforms: { inline: TRANSFORMS },
    ...extra,
  };
}

export function pipeline(
  spec: PipelineSpecInput = baseSpec(),
  options: {
    status?: PipelineStatus;
    annotations?: Record<string, string>;
    generation?: number;
    finalizers?: string[];
    deleting?: boolean;
  } = {},
): KashoPipeline {
  const parsed = parsePipeline({
    metadata: {
      name: 'orders',
      namespace: 'data',
      uid: 'uid-1',
      generation: options.generation ?? 1,
      finalizers: options.finalizers ?? ['kasho.io/source-cleanup'],
      ...(options.annotations ? { annotations: options.annotations } : {}),
      ...(options.deleting ? { deletionTimestamp: NOW } : {}),
    },
    spec,
    status: options.status ?? {},
  });
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return parsed.pipeline;
}

const data = (values: Record<string, string>, resourceVersion = '1'): ObservedData => ({
  data: values,
  resourceVersion,
});

export function referenced(
  overrides: Partial<Record<string, ObservedData | undefined>> = {},
): ReferencedObjects {
  const secrets = new Map<string, ObservedData | undefined>([
    [
      'source-db',
      data(
        { host: 'primary.db', port: '5432', dbname: 'app', username: 'kasho', password: 'p@ss/w:rd' },
        '11',
      ),
    ],
    ['source-su', data({ username: 'postgres', password: 'su' }, '12')],
    ['target-db', data({ url: 'postgresql://kasho:t@replica.db:5432/app' }, '13')],
  ]);
  for (const [name, value] of Object.entries(overrides)) secrets.set(name, value);
  return { secrets, configMaps: new Map() };
}

export function context(p: KashoPipeline = pipeline(), refs: ReferencedObjects = referenced()): BuildContext {
  const inputs = resolveInputs(p, refs);
  if (!inputs.ok) throw new Error(inputs.problems.join('\n'));
  return { pipeline: p, inputs: inputs.inputs, defaultImage: 'kasho:default' };
}

export function job(
  name: string,
  phase: JobObservation['phase'],
  extra: Partial<JobObservation> = {},
): JobObservation {
  return { name, phase, startTime: '2026-11-25T09:59:00.000Z', ...extra };
}

export function csStatus(
  state: ChangeStreamStatus['state'],
  extra: Partial<ChangeStreamStatus> = {},
): ChangeStreamStatus {
  return {
    state,
    slotName: 'kasho_slot',
    startLsn: state === 'WAITING' ? '' : '0/1900000',
    receivedLsn: state === 'WAITING' ? '' : '0/1A00000',
    confirmedLsn: state === 'STREAMING' ? '0/19F0000' : '',
    acknowledgedLsn: state === 'STREAMING' ? '0/19F0000' : '',
    accumulatedChanges: 5,
    bootstrapChanges: 300,
    retainedWalBytes: 2048,
    epoch: 'e1',
    lastError: '',
    ...extra,
  };
}

export function observed(p: KashoPipeline, extra: Partial<Observed> = {}): Observed {
  return {
    now: NOW,
    pipeline: p,
    defaultImage: 'kasho:default',
    randomSecret: 'random-secret-value-0123456789abcdef',
    inputs: resolveInputs(p, referenced()),
    managedRedisPresent: true,
    connectionSecretPresent: true,
    ...extra,
  };
}

/** The status a pipeline carries once it has been prepared (and, optionally, bootstrapped). */
export function preparedStatus(
  options: { bootstrapped?: boolean; streaming?: boolean; spec?: PipelineSpecInput } = {},
): PipelineStatus {
  const at = '2026-11-25T09:00:00.000Z';
  const conditions: NonNullable<PipelineStatus['conditions']> = [
    { type: 'Prepared', status: 'True', reason: 'JobSucceeded', message: '', lastTransitionTime: at },
  ];
  if (options.bootstrapped) {
    conditions.push({
      type: 'Bootstrapped',
      status: 'True',
      reason: 'Completed',
      message: '',
      lastTransitionTime: at,
    });
  }
  if (options.streaming) {
    conditions.push({
      type: 'Streaming',
      status: 'True',
      reason: 'Streaming',
      message: '',
      lastTransitionTime: at,
    });
  }
  return {
    phase: options.streaming ? 'Streaming' : 'Preparing',
    conditions,
    prepare: {
      jobName: 'orders-prepare',
      specHash: prepareSpecHash(pipeline(options.spec ?? baseSpec())),
      completedAt: at,
    },
  };
}
