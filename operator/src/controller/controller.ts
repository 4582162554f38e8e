/**
 * The I/O around the pure decision: informers on KashoPipelines and the objects they own feed a rate-limited work
 * queue; each reconcile reads the world fresh (the pipeline, the Secrets it names, its Jobs, the change-stream's
 * GetStatus, the translicator's metrics), asks decide() what to do, applies it, and writes the status only when it
 * changed, with optimistic locking.
 */
import { randomBytes } from 'node:crypto';
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from '@kasho/common/logger';
import {
  FINALIZER,
  parsePipeline,
  pipelineKey,
  type KashoPipeline,
  type KashoPipelineObject,
} from '../api/pipeline.js';
import { API_GROUP, API_VERSION, PLURAL, type PipelineStatus } from '../api/schema.js';
import {
  referencedConfigMapNames,
  referencedSecretNames,
  resolveInputs,
  type ReferencedObjects,
} from '../desired/inputs.js';
import { CONNECTION_KEYS, MANAGED_BY, PIPELINE_LABEL, childNames } from '../desired/names.js';
import { setCondition, isTrue } from '../reconcile/conditions.js';
import { decide } from '../reconcile/decide.js';
import type { Action, ActionResult, ChangeStreamObservation, Observed, Plan } from '../reconcile/observed.js';
import { applyOutcome } from '../reconcile/outcome.js';
import {
  clusterChangeStreamAddress,
  describeGrpcError,
  grpcChangeStreamClientFactory,
  httpTranslicatorMetricsReader,
  isTransientGrpcError,
  postgresSourceAdmin,
  toChangeStreamStatus,
  withTimeout,
  type ChangeStreamAddressResolver,
  type ChangeStreamClient,
  type ChangeStreamClientFactory,
  type SourceAdmin,
  type TranslicatorMetricsReader,
} from './dependencies.js';
import { KubeClient, describeApiError, statusCode } from './kube.js';
import { OperatorMetrics } from './metrics.js';
import { WorkQueue } from './work-queue.js';

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  /** Namespaces to watch; undefined or empty watches all. */
  namespaces?: string[];
  defaultImage: string;
  pollIntervalMs: number;
  /** Names this replica in events (reportingInstance). */
  identity: string;
  logger: Logger;
  metrics?: OperatorMetrics;
  workers?: number;
  changeStreamAddress?: ChangeStreamAddressResolver;
  changeStreamClientFactory?: ChangeStreamClientFactory;
  translicatorMetrics?: TranslicatorMetricsReader;
  sourceAdmin?: SourceAdmin;
  /** Longest wait for GetStatus (default 3 s) and for the other gRPC calls (10 times that). */
  grpcTimeoutMs?: number;
}

/** A reconcile that wrote its status but must be retried with backoff (e.g. an apply was refused). */
class RetryLater extends Error {}

/** JSON as the API server stores it: undefined fields gone, keys in a fixed order for comparison. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}

const cleanJson = <T>(value: T): T => JSON.parse(JSON.stringify(value ?? {})) as T;

export class Controller {
  readonly metrics: OperatorMetrics;
  private readonly kube: KubeClient;
  private readonly queue = new WorkQueue();
  private readonly informers: Informer<KubernetesObject>[] = [];
  private readonly clients = new Map<string, ChangeStreamClient>();
  private readonly workers: Promise<void>[] = [];
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private readonly signatures = new Map<string, string>();
  private stopped = false;
  private synced = false;
  private readonly addressOf: ChangeStreamAddressResolver;
  private readonly clientFactory: ChangeStreamClientFactory;
  private readonly readTranslicator: TranslicatorMetricsReader;
  private readonly sourceAdmin: SourceAdmin;
  private readonly grpcTimeoutMs: number;

  constructor(private readonly options: ControllerOptions) {
    this.kube = new KubeClient(options.kubeConfig);
    this.metrics = options.metrics ?? new OperatorMetrics();
    this.addressOf = options.changeStreamAddress ?? clusterChangeStreamAddress;
    this.clientFactory = options.changeStreamClientFactory ?? grpcChangeStreamClientFactory;
    this.readTranslicator = options.translicatorMetrics ?? httpTranslicatorMetricsReader();
    this.sourceAdmin = options.sourceAdmin ?? postgresSourceAdmin;
    this.grpcTimeoutMs = options.grpcTimeoutMs ?? 3000;
  }

  /** True once every informer has listed its objects. */
  get ready(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    await this.checkCrdServed();
    await this.startInformers();
    this.synced = true;
    for (let i = 0; i < (this.options.workers ?? 2); i++) this.workers.push(this.work());
    this.options.logger.info(
      `Watching KashoPipelines in ${this.namespaces().length ? this.namespaces().join(', ') : 'all namespaces'}`,
    );
  }

  /**
   * A 404 (the CRD is not installed) or a refusal ends the start at once: better said than retried forever. A 429
   * (a just-installed CRD's storage still initializing) or a 5xx is waited out for a while.
   */
  private async checkCrdServed(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.kube.listPipelines(this.namespaces()[0]);
        return;
      } catch (error) {
        const code = statusCode(error) ?? 0;
        if ((code !== 429 && code < 500) || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.shutDown();
    for (const timer of this.restartTimers) clearTimeout(timer);
    await Promise.all(this.informers.map((informer) => informer.stop()));
    await Promise.all(this.workers);
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  enqueue(namespace: string, name: string): void {
    this.queue.add(pipelineKey(namespace, name));
    this.metrics.queueDepth.set(this.queue.length);
  }

  /** Whether the spec, annotations, finalizers or deletion of a pipeline changed since the last event. */
  private pipelineChanged(key: string, object: KubernetesObject): boolean {
    const { generation, annotations, finalizers, deletionTimestamp } = object.metadata ?? {};
    const signature = canonical({ generation, annotations, finalizers, deletionTimestamp });
    if (this.signatures.get(key) === signature) return false;
    this.signatures.set(key, signature);
    return true;
  }

  private namespaces(): string[] {
    return this.options.namespaces ?? [];
  }

  private async startInformers(): Promise<void> {
    const kc = this.options.kubeConfig;
    const custom = kc.makeApiClient(CustomObjectsApi);
    const apps = kc.makeApiClient(AppsV1Api);
    const batch = kc.makeApiClient(BatchV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const labelSelector = `app.kubernetes.io/managed-by=${MANAGED_BY}`;
    type List = () => Promise<KubernetesListObject<KubernetesObject>>;
    const scopes: (string | undefined)[] = this.namespaces().length ? this.namespaces() : [undefined];
    const starts: Promise<void>[] = [];
    for (const ns of scopes) {
      const at = (prefix: string, plural: string) =>
        ns ? `${prefix}/namespaces/${ns}/${plural}` : `${prefix}/${plural}`;
      const pipelines: List = async () =>
        (ns
          ? await custom.listNamespacedCustomObject({
              group: API_GROUP,
              version: API_VERSION,
              namespace: ns,
              plural: PLURAL,
            })
          : await custom.listClusterCustomObject({
              group: API_GROUP,
              version: API_VERSION,
              plural: PLURAL,
            })) as KubernetesListObject<KubernetesObject>;
      starts.push(
        this.watch(at(`/apis/${API_GROUP}/${API_VERSION}`, PLURAL), pipelines, undefined, (object, verb) => {
          const { namespace, name } = object.metadata ?? {};
          if (!namespace || !name) return {};
          // The operator's own status writes come back as updates: only a change of what it acts on counts.
          const changed = this.pipelineChanged(pipelineKey(namespace, name), object);
          return verb === 'update' && !changed ? {} : { namespace, name };
        }),
      );
      // Secrets are left out on purpose: watching them needs list/watch on every Secret of the namespace, and the
      // poll brings a deleted connection Secret back anyway.
      const owned: [string, List][] = [
        [
          at('/apis/apps/v1', 'deployments'),
          () =>
            ns
              ? apps.listNamespacedDeployment({ namespace: ns, labelSelector })
              : apps.listDeploymentForAllNamespaces({ labelSelector }),
        ],
        [
          at('/apis/apps/v1', 'statefulsets'),
          () =>
            ns
              ? apps.listNamespacedStatefulSet({ namespace: ns, labelSelector })
              : apps.listStatefulSetForAllNamespaces({ labelSelector }),
        ],
        [
          at('/apis/batch/v1', 'jobs'),
          () =>
            ns
              ? batch.listNamespacedJob({ namespace: ns, labelSelector })
              : batch.listJobForAllNamespaces({ labelSelector }),
        ],
        [
          at('/api/v1', 'services'),
          () =>
            ns
              ? core.listNamespacedService({ namespace: ns, labelSelector })
              : core.listServiceForAllNamespaces({ labelSelector }),
        ],
        [
          at('/api/v1', 'configmaps'),
          () =>
            ns
              ? core.listNamespacedConfigMap({ namespace: ns, labelSelector })
              : core.listConfigMapForAllNamespaces({ labelSelector }),
        ],
      ];
      for (const [path, list] of owned) {
        starts.push(
          this.watch(path, list, labelSelector, (object) => ({
            namespace: object.metadata?.namespace,
            name: object.metadata?.labels?.[PIPELINE_LABEL],
          })),
        );
      }
    }
    await Promise.all(starts);
  }

  /** One informer; it restarts with a growing delay after an error (e.g. 429 while a new CRD's cache warms up). */
  private async watch(
    path: string,
    list: () => Promise<KubernetesListObject<KubernetesObject>>,
    labelSelector: string | undefined,
    ownerOf: (
      object: KubernetesObject,
      verb: 'add' | 'update' | 'delete',
    ) => { namespace?: string; name?: string },
  ): Promise<void> {
    let failures = 0;
    const listed = async () => {
      const result = await list();
      failures = 0;
      return result;
    };
    const informer = makeInformer(this.options.kubeConfig, path, listed, labelSelector);
    const on = (verb: 'add' | 'update' | 'delete') => (object: KubernetesObject) => {
      const { namespace, name } = ownerOf(object, verb);
      if (namespace && name) this.enqueue(namespace, name);
    };
    informer.on('add', on('add'));
    informer.on('update', on('update'));
    informer.on('delete', on('delete'));
    // The informer reports a failed list or watch here and stops; it is restarted with a growing delay.
    informer.on('error', (error: unknown) => {
      if (this.stopped) return;
      failures++;
      const delay = Math.min(250 * 2 ** failures, 30_000);
      // A fresh CRD's watch cache answers 429 for a moment; past that, say it once and then now and then.
      const expected = statusCode(error) === 429 && failures <= 3;
      if (!expected && (failures === 1 || failures % 10 === 0)) {
        this.options.logger.warn(
          `Watch ${path} failed ${failures} time(s) (${describeApiError(error).trim()}); retrying in ${delay} ms`,
        );
      }
      const timer = setTimeout(() => {
        this.restartTimers.delete(timer);
        if (!this.stopped) informer.start().catch(() => undefined);
      }, delay);
      this.restartTimers.add(timer);
    });
    this.informers.push(informer);
    await informer.start();
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const stopTimer = this.metrics.reconcileSeconds.startTimer();
      try {
        const next = await this.reconcile(key);
        this.queue.forget(key);
        this.metrics.reconciles.inc({ result: 'ok' });
        if (next !== undefined) this.queue.addAfter(key, next);
      } catch (error) {
        const conflict = statusCode(error) === 409;
        this.metrics.reconciles.inc({ result: conflict ? 'conflict' : 'error' });
        const delay = this.queue.addRateLimited(key);
        if (!conflict && !(error instanceof RetryLater)) {
          this.options.logger.warn(
            `Reconciling ${key} failed (retry in ${delay} ms): ${describeApiError(error)}`,
          );
        }
      } finally {
        stopTimer();
        this.queue.done(key);
        this.metrics.queueDepth.set(this.queue.length);
      }
    }
  }

  /** One pass over one pipeline; returns when to look again (undefined: only on the next event). */
  async reconcile(key: string): Promise<number | undefined> {
    const [namespace = '', name = ''] = key.split('/');
    const object = await this.kube.getPipeline(namespace, name);
    if (!object) {
      this.forget(namespace, name);
      return undefined;
    }
    const parsed = parsePipeline(object);
    if (!parsed.ok) {
      await this.reportInvalid(object, parsed.problems);
      return undefined;
    }
    const observed = await this.observe(parsed.pipeline);
    return this.execute(object, observed, decide(observed));
  }

  private forget(namespace: string, name: string): void {
    const address = this.addressOf(namespace, name);
    this.clients.get(address)?.close();
    this.clients.delete(address);
    this.signatures.delete(pipelineKey(namespace, name));
    this.metrics.forgetPipeline(namespace, name);
  }

  private client(pipeline: KashoPipeline): ChangeStreamClient {
    const address = this.addressOf(pipeline.metadata.namespace, pipeline.metadata.name);
    let client = this.clients.get(address);
    if (!client) {
      client = this.clientFactory(address);
      this.clients.set(address, client);
    }
    return client;
  }

  private async observe(pipeline: KashoPipeline): Promise<Observed> {
    const { namespace, name } = pipeline.metadata;
    const names = childNames(name);
    const observed: Observed = {
      now: new Date(),
      pipeline,
      defaultImage: this.options.defaultImage,
      randomSecret: randomBytes(32).toString('base64url'),
      inputs: { ok: false, problems: [] },
      managedRedisPresent: false,
      connectionSecretPresent: await this.kube.secretExists(namespace, names.connection),
    };
    if (pipeline.metadata.deletionTimestamp) return observed;

    const refs: ReferencedObjects = { secrets: new Map(), configMaps: new Map() };
    await Promise.all([
      ...referencedSecretNames(pipeline.spec).map(async (secret) =>
        refs.secrets.set(secret, await this.kube.readSecret(namespace, secret)),
      ),
      ...referencedConfigMapNames(pipeline.spec).map(async (configMap) =>
        refs.configMaps.set(configMap, await this.kube.readConfigMap(namespace, configMap)),
      ),
    ]);
    observed.inputs = resolveInputs(pipeline, refs);
    const [prepareJob, bootstrapJob, redisPresent] = await Promise.all([
      this.kube.readJob(namespace, names.prepareJob),
      this.kube.readJob(namespace, names.bootstrapJob),
      pipeline.spec.redis.external
        ? this.kube.statefulSetExists(namespace, names.redis)
        : Promise.resolve(true),
    ]);
    if (prepareJob) observed.prepareJob = prepareJob;
    if (bootstrapJob) observed.bootstrapJob = bootstrapJob;
    observed.managedRedisPresent = redisPresent;
    if (!observed.inputs.ok) return observed;

    if (!pipeline.spec.suspend) observed.changeStream = await this.askChangeStream(pipeline);
    const cs = observed.changeStream;
    if (cs?.reachable && cs.status.state === 'STREAMING') {
      const metrics = await this.readTranslicator(namespace, name);
      if (metrics) observed.translicator = metrics;
    }
    const bootstrapped = isTrue(pipeline.status.conditions, 'Bootstrapped');
    if (pipeline.spec.suspend || (bootstrapped && cs && !cs.reachable)) {
      observed.sourceSlot = await this.sourceAdmin.slotInfo(
        observed.inputs.inputs.connection[CONNECTION_KEYS.source] ?? '',
        pipeline.spec.slot,
      );
    }
    return observed;
  }

  private async askChangeStream(pipeline: KashoPipeline): Promise<ChangeStreamObservation> {
    try {
      const response = await withTimeout(this.client(pipeline).getStatus(), this.grpcTimeoutMs, 'GetStatus');
      return { reachable: true, status: toChangeStreamStatus(response) };
    } catch (error) {
      return { reachable: false, error: describeGrpcError(error) };
    }
  }

  private async runAction(observed: Observed, action: Action): Promise<ActionResult> {
    const { pipeline } = observed;
    const { namespace, name } = pipeline.metadata;
    const names = childNames(name);
    const timeoutMs = this.grpcTimeoutMs * 10;
    try {
      switch (action.type) {
        case 'startBootstrapWithoutSnapshot': {
          const client = this.client(pipeline);
          await withTimeout(client.startBootstrap(), timeoutMs, 'StartBootstrap');
          await withTimeout(client.releaseSnapshot(), timeoutMs, 'ReleaseSnapshot');
          break;
        }
        case 'completeBootstrap':
          await withTimeout(this.client(pipeline).completeBootstrap(), timeoutMs, 'CompleteBootstrap');
          break;
        case 'resetBootstrap':
          await withTimeout(this.client(pipeline).resetBootstrap(), timeoutMs, 'ResetBootstrap');
          await this.kube.delete(namespace, {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name: names.bootstrapJob,
          });
          break;
        case 'deleteJob':
          await this.kube.delete(namespace, { apiVersion: 'batch/v1', kind: 'Job', name: action.name });
          break;
        case 'cleanupSource': {
          const connection = await this.kube.readSecret(namespace, names.connection);
          const url = connection?.data[CONNECTION_KEYS.source];
          if (!url)
            return { ok: false, error: `Secret ${names.connection} has no source URL`, transient: false };
          const superuserUrl = await this.superuserUrl(pipeline, url);
          await this.sourceAdmin.dropSlotAndPublication({
            url,
            ...(superuserUrl ? { superuserUrl } : {}),
            slot: action.slot,
            publication: action.publication,
          });
          break;
        }
      }
      return { ok: true };
    } catch (error) {
      const message = action.type === 'deleteJob' ? describeApiError(error) : describeGrpcError(error);
      return { ok: false, error: message, transient: isTransientGrpcError(error) };
    }
  }

  /** The source URL with the superuser's credentials, when its Secret is still there. */
  private async superuserUrl(pipeline: KashoPipeline, url: string): Promise<string | undefined> {
    const superuser = pipeline.spec.source.superuser;
    if (!superuser) return undefined;
    const secret = await this.kube.readSecret(pipeline.metadata.namespace, superuser.secretName);
    const user = secret?.data[superuser.userKey];
    if (!secret || !user) return undefined;
    const parsed = new URL(url);
    parsed.username = user;
    parsed.password = secret.data[superuser.passwordKey] ?? '';
    return parsed.toString();
  }

  private async execute(
    object: KashoPipelineObject,
    observed: Observed,
    decided: Plan,
  ): Promise<number | undefined> {
    const { pipeline } = observed;
    const { namespace, name } = pipeline.metadata;
    const log = this.options.logger;
    let plan = decided;
    let current = object;
    if (plan.addFinalizer) {
      current = await this.kube.patchPipelineMetadata(namespace, name, {
        finalizers: [...(current.metadata.finalizers ?? []), FINALIZER],
        resourceVersion: current.metadata.resourceVersion,
      });
    }
    const failures: string[] = [];
    const created: string[] = [];
    for (const child of plan.apply) {
      try {
        await this.kube.apply(child);
      } catch (error) {
        failures.push(`applying ${child.kind} ${child.metadata?.name}: ${describeApiError(error)}`);
      }
    }
    for (const child of plan.createIfAbsent) {
      try {
        if (await this.kube.createIfAbsent(child)) created.push(`${child.kind} ${child.metadata?.name}`);
      } catch (error) {
        failures.push(`creating ${child.kind} ${child.metadata?.name}: ${describeApiError(error)}`);
      }
    }
    for (const ref of plan.delete) {
      try {
        await this.kube.delete(namespace, ref);
      } catch (error) {
        failures.push(`deleting ${ref.kind} ${ref.name}: ${describeApiError(error)}`);
      }
    }
    if (plan.action) {
      const result = await this.runAction(observed, plan.action);
      if (!result.ok) this.metrics.errors.inc({ kind: 'action' });
      plan = applyOutcome(observed, plan, result);
    }
    const events = [...plan.events];
    for (const what of created)
      events.push({ type: 'Normal', reason: 'Created', message: `Created ${what}` });
    const status: PipelineStatus = plan.status;
    if (failures.length > 0) {
      this.metrics.errors.inc({ kind: 'apply' }, failures.length);
      const message = failures.join('; ');
      if (message !== pipeline.status.lastError) {
        events.push({ type: 'Warning', reason: 'ApplyFailed', message });
        log.warn(`${namespace}/${name}: ${message}`);
      }
      status.lastError = message;
      status.conditions = setCondition(
        status.conditions ?? [],
        { type: 'Degraded', status: 'True', reason: 'ApplyFailed', message },
        observed.now,
        pipeline.metadata.generation,
      );
    }
    if (plan.removeAnnotations.length > 0) {
      current = await this.kube.patchPipelineMetadata(namespace, name, {
        annotations: Object.fromEntries(plan.removeAnnotations.map((key) => [key, null])),
      });
    }
    current = await this.writeStatus(current, status);
    for (const event of events) {
      try {
        await this.kube.createEvent(current, event, this.options.identity);
      } catch (error) {
        this.metrics.errors.inc({ kind: 'event' });
        log.warn(`${namespace}/${name}: could not record event ${event.reason}: ${describeApiError(error)}`);
      }
    }
    for (const event of plan.events) {
      if (event.type === 'Warning') log.warn(`${namespace}/${name}: ${event.reason}: ${event.message}`);
      else log.info(`${namespace}/${name}: ${event.reason}: ${event.message}`);
    }
    this.metrics.observePipeline(namespace, name, status);
    if (plan.removeFinalizer) {
      await this.kube.patchPipelineMetadata(namespace, name, {
        finalizers: (current.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
        resourceVersion: current.metadata.resourceVersion,
      });
      this.forget(namespace, name);
      return undefined;
    }
    if (failures.length > 0) throw new RetryLater(failures.join('; '));
    return plan.requeueAfterMs ?? this.options.pollIntervalMs;
  }

  /** Writes the status through the status subresource when it changed; one retry after a conflict. */
  private async writeStatus(
    object: KashoPipelineObject,
    status: PipelineStatus,
  ): Promise<KashoPipelineObject> {
    const next = cleanJson(status);
    if (canonical(next) === canonical(object.status ?? {})) return object;
    try {
      return await this.kube.replacePipelineStatus(object, next);
    } catch (error) {
      if (statusCode(error) !== 409) {
        this.metrics.errors.inc({ kind: 'status' });
        throw error;
      }
      const fresh = await this.kube.getPipeline(object.metadata.namespace ?? '', object.metadata.name ?? '');
      if (!fresh) return object;
      return this.kube.replacePipelineStatus(fresh, next);
    }
  }

  private async reportInvalid(object: KashoPipelineObject, problems: string[]): Promise<void> {
    const now = new Date();
    const previous = (object.status ?? {}) as PipelineStatus;
    const message = problems.join('; ');
    const status: PipelineStatus = {
      ...previous,
      phase: 'Failed',
      observedGeneration: object.metadata.generation,
      lastError: message,
      conditions: setCondition(
        previous.conditions ?? [],
        { type: 'Ready', status: 'False', reason: 'InvalidSpec', message },
        now,
        object.metadata.generation,
      ),
    };
    const written = await this.writeStatus(object, status);
    if (previous.lastError !== message) {
      await this.kube
        .createEvent(written, { type: 'Warning', reason: 'InvalidSpec', message }, this.options.identity)
        .catch(() => undefined);
    }
  }
}
