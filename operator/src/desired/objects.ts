/**
 * The objects a pipeline wants, built by pure functions from the resource and its resolved inputs. The controller
 * applies them with server-side apply; tests read them directly.
 */
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1Job,
  V1PodSpec,
  V1PodTemplateSpec,
  V1Probe,
  V1ResourceRequirements,
  V1Secret,
  V1SecurityContext,
  V1Service,
  V1StatefulSet,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import type { KashoPipeline } from '../api/pipeline.js';
import type { PodOptions } from '../api/schema.js';
import type { ResolvedInputs } from './inputs.js';
import { sha256 } from './inputs.js';
import {
  CONFIG_HASH_ANNOTATION,
  CONNECTION_KEYS,
  GRPC_PORT,
  HTTP_PORT,
  KASHO_UID,
  REDIS_PORT,
  REDIS_UID,
  SPEC_HASH_ANNOTATION,
  TRANSFORMS_KEY,
  changeStreamAddress,
  childNames,
  labels,
  ownerReference,
  selectorLabels,
  type Component,
} from './names.js';

export interface BuildContext {
  pipeline: KashoPipeline;
  inputs: ResolvedInputs;
  /** The image used when spec.image is empty (the operator's DEFAULT_IMAGE). */
  defaultImage: string;
}

function metadata(
  ctx: BuildContext,
  name: string,
  component: Component,
  annotations?: Record<string, string>,
) {
  return {
    name,
    namespace: ctx.pipeline.metadata.namespace,
    labels: labels(ctx.pipeline.metadata.name, component),
    ...(annotations ? { annotations } : {}),
    ownerReferences: [ownerReference(ctx.pipeline)],
  };
}

const image = (ctx: BuildContext) => ctx.pipeline.spec.image ?? ctx.defaultImage;

function containerSecurity(uid: number): V1SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  };
}

/** Pod-level settings every Kasho pod shares: non-root, no API token, no service-link variables. */
function podBase(ctx: BuildContext, options: PodOptions, uid = KASHO_UID): Partial<V1PodSpec> {
  const { spec } = ctx.pipeline;
  return {
    securityContext: {
      runAsNonRoot: true,
      runAsUser: uid,
      runAsGroup: uid,
      fsGroup: uid,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    ...(spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
    ...(spec.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets } : {}),
    ...(options.nodeSelector ? { nodeSelector: options.nodeSelector } : {}),
    ...(options.tolerations ? { tolerations: options.tolerations } : {}),
  };
}

function containerBase(ctx: BuildContext, options: PodOptions, name: string, command: string[]): V1Container {
  return {
    name,
    image: image(ctx),
    ...(ctx.pipeline.spec.imagePullPolicy ? { imagePullPolicy: ctx.pipeline.spec.imagePullPolicy } : {}),
    command,
    securityContext: containerSecurity(KASHO_UID),
    ...(options.resources ? { resources: options.resources as V1ResourceRequirements } : {}),
  };
}

/** Managed variables first, then the user's extra ones (the CRD refuses extras that shadow managed names). */
function env(managed: V1EnvVar[], options: PodOptions): V1EnvVar[] {
  return [...managed, ...((options.env ?? []) as V1EnvVar[])];
}

const fromConnection = (ctx: BuildContext, name: string, key: string): V1EnvVar => ({
  name,
  valueFrom: { secretKeyRef: { name: childNames(ctx.pipeline.metadata.name).connection, key } },
});

const fromSecret = (name: string, secret: string, key: string): V1EnvVar => ({
  name,
  valueFrom: { secretKeyRef: { name: secret, key } },
});

const tmpVolume: V1Volume = { name: 'tmp', emptyDir: {} };
const tmpMount: V1VolumeMount = { name: 'tmp', mountPath: '/tmp' };

function httpProbe(path: string, periodSeconds: number, failureThreshold: number): V1Probe {
  return { httpGet: { path, port: 'http' }, periodSeconds, timeoutSeconds: 5, failureThreshold };
}

function template(
  ctx: BuildContext,
  component: Component,
  spec: V1PodSpec,
  annotations?: Record<string, string>,
): V1PodTemplateSpec {
  return {
    metadata: {
      labels: labels(ctx.pipeline.metadata.name, component),
      ...(annotations ? { annotations } : {}),
    },
    spec,
  };
}

export function transformsConfigMap(ctx: BuildContext): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: metadata(ctx, childNames(ctx.pipeline.metadata.name).transforms, 'config'),
    data: { [TRANSFORMS_KEY]: ctx.inputs.transforms },
  };
}

export function connectionSecret(ctx: BuildContext): V1Secret {
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries(ctx.inputs.connection)) {
    data[key] = Buffer.from(value, 'utf8').toString('base64');
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: metadata(ctx, childNames(ctx.pipeline.metadata.name).connection, 'config'),
    type: 'Opaque',
    data,
  };
}

/** Created once when spec.transformSecretRef is absent and never updated: a new key would change every fake. */
export function generatedTransformSecret(ctx: BuildContext, randomValue: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: metadata(ctx, ctx.inputs.transformSecret.name, 'config'),
    type: 'Opaque',
    data: { [ctx.inputs.transformSecret.key]: Buffer.from(randomValue, 'utf8').toString('base64') },
  };
}

export function redisService(ctx: BuildContext): V1Service {
  const name = ctx.pipeline.metadata.name;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(ctx, childNames(name).redis, 'redis'),
    spec: {
      clusterIP: 'None',
      selector: selectorLabels(name, 'redis'),
      ports: [{ name: 'redis', port: REDIS_PORT, targetPort: 'redis' }],
    },
  };
}

export function redisStatefulSet(ctx: BuildContext): V1StatefulSet {
  const name = ctx.pipeline.metadata.name;
  const managed = ctx.pipeline.spec.redis.managed;
  if (!managed) throw new Error('redisStatefulSet needs spec.redis.managed');
  const podSpec: V1PodSpec = {
    ...podBase(ctx, managed, REDIS_UID),
    containers: [
      {
        name: 'redis',
        image: managed.image,
        // Every write reaches the append-only file on the claim within a second; no RDB snapshots.
        args: [
          'redis-server',
          '--appendonly',
          'yes',
          '--appendfsync',
          'everysec',
          '--save',
          '',
          '--dir',
          '/data',
        ],
        ports: [{ name: 'redis', containerPort: REDIS_PORT }],
        readinessProbe: { exec: { command: ['redis-cli', 'ping'] }, periodSeconds: 5, timeoutSeconds: 5 },
        livenessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 10, failureThreshold: 6 },
        securityContext: containerSecurity(REDIS_UID),
        ...(managed.resources ? { resources: managed.resources as V1ResourceRequirements } : {}),
        ...(managed.env ? { env: managed.env as V1EnvVar[] } : {}),
        volumeMounts: [{ name: 'data', mountPath: '/data' }, tmpMount],
      },
    ],
    volumes: [tmpVolume],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: metadata(ctx, childNames(name).redis, 'redis'),
    spec: {
      serviceName: childNames(name).redis,
      replicas: 1,
      selector: { matchLabels: selectorLabels(name, 'redis') },
      template: template(ctx, 'redis', podSpec),
      volumeClaimTemplates: [
        {
          metadata: { name: 'data', labels: labels(name, 'redis') },
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(managed.storage.storageClassName
              ? { storageClassName: managed.storage.storageClassName }
              : {}),
            resources: { requests: { storage: String(managed.storage.size) } },
          },
        },
      ],
    },
  };
}

export function changeStreamService(ctx: BuildContext): V1Service {
  const name = ctx.pipeline.metadata.name;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(ctx, childNames(name).changeStream, 'change-stream'),
    spec: {
      selector: selectorLabels(name, 'change-stream'),
      ports: [
        { name: 'grpc', port: GRPC_PORT, targetPort: 'grpc', appProtocol: 'grpc' },
        { name: 'http', port: HTTP_PORT, targetPort: 'http' },
      ],
    },
  };
}

export function changeStreamDeployment(ctx: BuildContext): V1Deployment {
  const { spec, metadata: meta } = ctx.pipeline;
  const options = spec.changeStream;
  const container: V1Container = {
    ...containerBase(ctx, options, 'pg-change-stream', ['/app/pg-change-stream']),
    ports: [
      { name: 'grpc', containerPort: GRPC_PORT },
      { name: 'http', containerPort: HTTP_PORT },
    ],
    env: env(
      [
        fromConnection(ctx, 'PRIMARY_DATABASE_URL', CONNECTION_KEYS.source),
        fromConnection(ctx, 'KV_URL', CONNECTION_KEYS.redis),
        { name: 'GRPC_PORT', value: String(GRPC_PORT) },
        { name: 'HTTP_PORT', value: String(HTTP_PORT) },
        { name: 'SLOT_NAME', value: spec.slot },
        { name: 'PUBLICATION_NAME', value: spec.publication },
      ],
      options,
    ),
    readinessProbe: httpProbe('/readyz', 5, 3),
    livenessProbe: httpProbe('/healthz', 10, 6),
    volumeMounts: [tmpMount],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(ctx, childNames(meta.name).changeStream, 'change-stream'),
    spec: {
      replicas: spec.suspend ? 0 : 1,
      // One slot has one reader: the old pod must be gone before the new one connects.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: selectorLabels(meta.name, 'change-stream') },
      template: template(
        ctx,
        'change-stream',
        { ...podBase(ctx, options), containers: [container], volumes: [tmpVolume] },
        { [CONFIG_HASH_ANNOTATION]: ctx.inputs.configHash.changeStream },
      ),
    },
  };
}

export function translicatorService(ctx: BuildContext): V1Service {
  const name = ctx.pipeline.metadata.name;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(ctx, childNames(name).translicator, 'translicator'),
    spec: {
      selector: selectorLabels(name, 'translicator'),
      ports: [{ name: 'http', port: HTTP_PORT, targetPort: 'http' }],
    },
  };
}

export function translicatorDeployment(ctx: BuildContext): V1Deployment {
  const { spec, metadata: meta } = ctx.pipeline;
  const options = spec.translicator;
  const names = childNames(meta.name);
  const container: V1Container = {
    ...containerBase(ctx, options, 'pg-translicator', ['/app/pg-translicator']),
    ports: [{ name: 'http', containerPort: HTTP_PORT }],
    env: env(
      [
        { name: 'CHANGE_STREAM_SERVICE', value: changeStreamAddress(ctx.pipeline) },
        fromConnection(ctx, 'REPLICA_DATABASE_URL', CONNECTION_KEYS.target),
        fromSecret('TRANSFORM_SECRET', ctx.inputs.transformSecret.name, ctx.inputs.transformSecret.key),
        { name: 'TRANSFORMS_FILE', value: `/app/config/${TRANSFORMS_KEY}` },
        { name: 'HTTP_PORT', value: String(HTTP_PORT) },
      ],
      options,
    ),
    readinessProbe: httpProbe('/readyz', 5, 3),
    livenessProbe: httpProbe('/healthz', 10, 6),
    volumeMounts: [{ name: 'config', mountPath: '/app/config', readOnly: true }, tmpMount],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(ctx, names.translicator, 'translicator'),
    spec: {
      // Exactly one writer to the target: never two pods, not even during a rollout.
      replicas: spec.suspend ? 0 : 1,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: selectorLabels(meta.name, 'translicator') },
      template: template(
        ctx,
        'translicator',
        {
          ...podBase(ctx, options),
          containers: [container],
          volumes: [{ name: 'config', configMap: { name: names.transforms } }, tmpVolume],
        },
        { [CONFIG_HASH_ANNOTATION]: ctx.inputs.configHash.translicator },
      ),
    },
  };
}

function job(
  ctx: BuildContext,
  name: string,
  component: 'prepare' | 'bootstrap',
  container: V1Container,
  specHash: string,
  volumes: V1Volume[],
): V1Job {
  const { bootstrap, jobs } = ctx.pipeline.spec;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: metadata(ctx, name, component, { [SPEC_HASH_ANNOTATION]: specHash }),
    spec: {
      backoffLimit: bootstrap.backoffLimit,
      ...(component === 'bootstrap' && bootstrap.activeDeadlineSeconds
        ? { activeDeadlineSeconds: bootstrap.activeDeadlineSeconds }
        : {}),
      template: template(ctx, component, {
        ...podBase(ctx, jobs),
        restartPolicy: 'Never',
        containers: [container],
        volumes,
      }),
    },
  };
}

/** What the preparation depends on: a change reruns it (under the same name, after the old Job is deleted). */
export function prepareSpecHash(pipeline: KashoPipeline): string {
  const { spec } = pipeline;
  return sha256(
    JSON.stringify([
      spec.publication,
      spec.prepare,
      spec.source.superuser?.secretName ?? '',
      spec.target.superuser?.secretName ?? '',
    ]),
  ).slice(0, 16);
}

/** Whether the preparation Job runs at all: it needs a superuser of the source. */
export const preparationRequested = (pipeline: KashoPipeline): boolean =>
  pipeline.spec.source.superuser !== undefined;

export function prepareJob(ctx: BuildContext): V1Job {
  const { spec } = ctx.pipeline;
  const args = ['--publication', spec.publication];
  if (spec.prepare.replicaIdentityFull) args.push('--replica-identity-full');
  if (spec.prepare.replicaOwner) args.push('--replica-owner');
  const managed: V1EnvVar[] = [
    fromConnection(ctx, 'PRIMARY_DATABASE_URL', CONNECTION_KEYS.source),
    fromConnection(ctx, 'REPLICA_DATABASE_URL', CONNECTION_KEYS.target),
  ];
  const sourceSu = spec.source.superuser;
  if (sourceSu) {
    managed.push(fromSecret('PRIMARY_DATABASE_SU_USER', sourceSu.secretName, sourceSu.userKey));
    managed.push(fromSecret('PRIMARY_DATABASE_SU_PASSWORD', sourceSu.secretName, sourceSu.passwordKey));
  }
  const targetSu = spec.target.superuser;
  if (targetSu) {
    managed.push(fromSecret('REPLICA_DATABASE_SU_USER', targetSu.secretName, targetSu.userKey));
    managed.push(fromSecret('REPLICA_DATABASE_SU_PASSWORD', targetSu.secretName, targetSu.passwordKey));
  } else {
    args.push('--skip-replica');
  }
  const container: V1Container = {
    ...containerBase(ctx, spec.jobs, 'prepare', ['/app/scripts/prepare-primary-db.sh']),
    args,
    env: env(managed, spec.jobs),
    volumeMounts: [tmpMount],
  };
  return job(
    ctx,
    childNames(ctx.pipeline.metadata.name).prepareJob,
    'prepare',
    container,
    prepareSpecHash(ctx.pipeline),
    [tmpVolume],
  );
}

/**
 * Loads the snapshot but does not complete the bootstrap: with WAIT_FOR_BOOTSTRAP unset and no terminal on stdin,
 * scripts/bootstrap-kasho.sh stops after the load and exits 0, and the operator calls CompleteBootstrap itself
 * (autoComplete or the annotation). RESET_ON_FAILURE returns the change-stream to WAITING after a failed attempt,
 * so the Job's own retries start clean.
 */
export function bootstrapJob(ctx: BuildContext): V1Job {
  const { spec } = ctx.pipeline;
  const scratch: V1Volume = {
    name: 'tmp',
    emptyDir: spec.bootstrap.scratchSizeLimit ? { sizeLimit: String(spec.bootstrap.scratchSizeLimit) } : {},
  };
  const container: V1Container = {
    ...containerBase(ctx, spec.jobs, 'bootstrap', ['/app/scripts/bootstrap-kasho.sh']),
    env: env(
      [
        fromConnection(ctx, 'PRIMARY_DATABASE_URL', CONNECTION_KEYS.source),
        fromConnection(ctx, 'KV_URL', CONNECTION_KEYS.redis),
        { name: 'CHANGE_STREAM_SERVICE', value: changeStreamAddress(ctx.pipeline) },
        { name: 'BOOTSTRAP_METHOD', value: spec.bootstrap.method },
        { name: 'RESET_ON_FAILURE', value: 'true' },
        { name: 'DUMP_DIR', value: '/tmp' },
      ],
      spec.jobs,
    ),
    volumeMounts: [tmpMount],
  };
  return job(
    ctx,
    childNames(ctx.pipeline.metadata.name).bootstrapJob,
    'bootstrap',
    container,
    sha256(JSON.stringify([spec.bootstrap.method, spec.slot])).slice(0, 16),
    [scratch],
  );
}

export type DesiredObject = KubernetesObject;
