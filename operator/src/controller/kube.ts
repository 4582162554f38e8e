/** The operator's calls to the Kubernetes API, each one small and named for what it does. */
import {
  ApiException,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1Job,
} from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, KIND, PLURAL } from '../api/schema.js';
import type { KashoPipelineObject } from '../api/pipeline.js';
import { FIELD_MANAGER, SPEC_HASH_ANNOTATION } from '../desired/names.js';
import type { ObservedData } from '../desired/inputs.js';
import type { EventSpec, JobObservation, ObjectRef } from '../reconcile/observed.js';

export function statusCode(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const code = (error as { code?: unknown; statusCode?: unknown } | null)?.code;
  if (typeof code === 'number') return code;
  const statusCodeValue = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof statusCodeValue === 'number' ? statusCodeValue : undefined;
}

/** The API server's own message (e.g. a validation error naming the field), without the HTTP noise. */
export function describeApiError(error: unknown): string {
  if (error instanceof ApiException) {
    const body = error.body as unknown;
    let message: string | undefined;
    if (typeof body === 'string') {
      try {
        message = (JSON.parse(body) as { message?: string }).message;
      } catch {
        message = body;
      }
    } else if (body && typeof body === 'object') {
      message = (body as { message?: string }).message;
    }
    return `HTTP ${error.code}: ${message ?? 'no message'}`;
  }
  return error instanceof Error ? error.message : String(error);
}

const notFoundToUndefined = <T>(promise: Promise<T>): Promise<T | undefined> =>
  promise.catch((error: unknown) => {
    if (statusCode(error) === 404) return undefined;
    throw error;
  });

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

const decode = (data: Record<string, string> | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(data ?? {}))
    out[key] = Buffer.from(value, 'base64').toString('utf8');
  return out;
};

export class KubeClient {
  private readonly objects: KubernetesObjectApi;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly batch: BatchV1Api;
  private readonly apps: AppsV1Api;

  constructor(readonly kubeConfig: KubeConfig) {
    this.objects = KubernetesObjectApi.makeApiClient(kubeConfig);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
  }

  getPipeline(namespace: string, name: string): Promise<KashoPipelineObject | undefined> {
    return notFoundToUndefined(
      this.custom.getNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        namespace,
        plural: PLURAL,
        name,
      }),
    ) as Promise<KashoPipelineObject | undefined>;
  }

  async listPipelines(namespace: string | undefined): Promise<KashoPipelineObject[]> {
    const list = (
      namespace
        ? await this.custom.listNamespacedCustomObject({
            group: API_GROUP,
            version: API_VERSION,
            namespace,
            plural: PLURAL,
          })
        : await this.custom.listClusterCustomObject({
            group: API_GROUP,
            version: API_VERSION,
            plural: PLURAL,
          })
    ) as { items?: KashoPipelineObject[] };
    return list.items ?? [];
  }

  /** A JSON merge patch of the pipeline's metadata; with resourceVersion it fails on a concurrent change. */
  patchPipelineMetadata(
    namespace: string,
    name: string,
    metadata: Record<string, unknown>,
  ): Promise<KashoPipelineObject> {
    return this.custom.patchNamespacedCustomObject(
      { group: API_GROUP, version: API_VERSION, namespace, plural: PLURAL, name, body: { metadata } },
      mergePatch,
    ) as Promise<KashoPipelineObject>;
  }

  /** PUT on the status subresource: the resourceVersion makes it fail with 409 if the object changed meanwhile. */
  replacePipelineStatus(object: KashoPipelineObject, status: unknown): Promise<KashoPipelineObject> {
    const { name, namespace } = object.metadata;
    return this.custom.replaceNamespacedCustomObjectStatus({
      group: API_GROUP,
      version: API_VERSION,
      namespace: namespace ?? '',
      plural: PLURAL,
      name: name ?? '',
      body: { ...object, status },
    }) as Promise<KashoPipelineObject>;
  }

  async readSecret(namespace: string, name: string): Promise<ObservedData | undefined> {
    const secret = await notFoundToUndefined(this.core.readNamespacedSecret({ namespace, name }));
    if (!secret) return undefined;
    return { data: decode(secret.data), resourceVersion: secret.metadata?.resourceVersion ?? '' };
  }

  async readConfigMap(namespace: string, name: string): Promise<ObservedData | undefined> {
    const configMap = await notFoundToUndefined(this.core.readNamespacedConfigMap({ namespace, name }));
    if (!configMap) return undefined;
    return { data: configMap.data ?? {}, resourceVersion: configMap.metadata?.resourceVersion ?? '' };
  }

  async readJob(namespace: string, name: string): Promise<JobObservation | undefined> {
    const job = await notFoundToUndefined(this.batch.readNamespacedJob({ namespace, name }));
    return job ? observeJob(job) : undefined;
  }

  async statefulSetExists(namespace: string, name: string): Promise<boolean> {
    return (
      (await notFoundToUndefined(this.apps.readNamespacedStatefulSet({ namespace, name }))) !== undefined
    );
  }

  async secretExists(namespace: string, name: string): Promise<boolean> {
    return (await notFoundToUndefined(this.core.readNamespacedSecret({ namespace, name }))) !== undefined;
  }

  /** Server-side apply under the operator's field manager; force takes over fields another manager changed. */
  apply(object: KubernetesObject): Promise<KubernetesObject> {
    return this.objects.patch(
      object,
      undefined,
      undefined,
      FIELD_MANAGER,
      true,
      PatchStrategy.ServerSideApply,
    );
  }

  /** Creates the object unless it exists; never updates it. Returns true when it was created. */
  async createIfAbsent(object: KubernetesObject): Promise<boolean> {
    try {
      await this.objects.create(object, undefined, undefined, FIELD_MANAGER);
      return true;
    } catch (error) {
      if (statusCode(error) === 409) return false;
      throw error;
    }
  }

  /** Deletes in the background (dependents such as a Job's pods go after it); absent is fine. */
  async delete(namespace: string, ref: ObjectRef): Promise<void> {
    await notFoundToUndefined(
      this.objects.delete(
        { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace } },
        undefined,
        undefined,
        undefined,
        undefined,
        'Background',
      ),
    );
  }

  async createEvent(object: KashoPipelineObject, event: EventSpec, reportingInstance: string): Promise<void> {
    const { name, namespace, uid, resourceVersion } = object.metadata;
    const now = new Date();
    await this.core.createNamespacedEvent({
      namespace: namespace ?? '',
      body: {
        metadata: { generateName: `${name}.`, namespace },
        involvedObject: {
          apiVersion: `${API_GROUP}/${API_VERSION}`,
          kind: KIND,
          name,
          namespace,
          uid,
          resourceVersion,
        },
        type: event.type,
        reason: event.reason,
        message: event.message.slice(0, 1024),
        source: { component: FIELD_MANAGER },
        reportingComponent: `${API_GROUP}/operator`,
        reportingInstance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }
}

/** A Job's terminal state comes only from its Complete or Failed condition: a failed pod that is retried is not. */
export function observeJob(job: V1Job): JobObservation {
  const conditions = job.status?.conditions ?? [];
  const terminal = conditions.find(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
  const time = (value: Date | string | undefined) =>
    value === undefined ? undefined : new Date(value).toISOString();
  const specHash = job.metadata?.annotations?.[SPEC_HASH_ANNOTATION];
  return {
    name: job.metadata?.name ?? '',
    phase: terminal ? (terminal.type === 'Complete' ? 'Succeeded' : 'Failed') : 'Running',
    ...(terminal?.reason ? { reason: terminal.reason } : {}),
    ...(terminal?.message ? { message: terminal.message } : {}),
    ...(job.status?.startTime ? { startTime: time(job.status.startTime) } : {}),
    ...(job.status?.completionTime ? { completionTime: time(job.status.completionTime) } : {}),
    ...(specHash ? { specHash } : {}),
  };
}
