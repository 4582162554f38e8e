import type { V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION_STRING, KIND, type KashoPipeline } from '../api/pipeline.js';

export const FIELD_MANAGER = 'kasho-operator';
export const MANAGED_BY = 'kasho-operator';
export const PIPELINE_LABEL = 'kasho.io/pipeline';
export const CONFIG_HASH_ANNOTATION = 'kasho.io/config-hash';
export const SPEC_HASH_ANNOTATION = 'kasho.io/spec-hash';

export const GRPC_PORT = 8080;
export const HTTP_PORT = 9090;
export const REDIS_PORT = 6379;
/** The uid:gid the kasho image runs as. */
export const KASHO_UID = 10001;
/** The uid:gid of the redis user in the official Redis images. */
export const REDIS_UID = 999;

/** Keys of the connection Secret the operator composes from the user's Secrets. */
export const CONNECTION_KEYS = {
  source: 'PRIMARY_DATABASE_URL',
  target: 'REPLICA_DATABASE_URL',
  redis: 'KV_URL',
} as const;
export const TRANSFORMS_KEY = 'transforms.yml';
export const GENERATED_TRANSFORM_SECRET_KEY = 'secret';

export type Component = 'config' | 'redis' | 'change-stream' | 'translicator' | 'prepare' | 'bootstrap';

/** Every child's name derives from the pipeline's (at most 40 characters, so each fits in 63). */
export function childNames(pipeline: string) {
  return {
    transforms: `${pipeline}-transforms`,
    transformSecret: `${pipeline}-transform-secret`,
    connection: `${pipeline}-connection`,
    redis: `${pipeline}-redis`,
    changeStream: `${pipeline}-change-stream`,
    translicator: `${pipeline}-translicator`,
    prepareJob: `${pipeline}-prepare`,
    bootstrapJob: `${pipeline}-bootstrap`,
  };
}

export type ChildNames = ReturnType<typeof childNames>;

/** Labels that select a component's pods: never change them (Deployment selectors are immutable). */
export function selectorLabels(pipeline: string, component: Component): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'kasho',
    'app.kubernetes.io/instance': pipeline,
    'app.kubernetes.io/component': component,
  };
}

export function labels(pipeline: string, component: Component): Record<string, string> {
  return {
    ...selectorLabels(pipeline, component),
    'app.kubernetes.io/part-of': 'kasho',
    'app.kubernetes.io/managed-by': MANAGED_BY,
    [PIPELINE_LABEL]: pipeline,
  };
}

export function ownerReference(pipeline: KashoPipeline): V1OwnerReference {
  return {
    apiVersion: API_VERSION_STRING,
    kind: KIND,
    name: pipeline.metadata.name,
    uid: pipeline.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The change-stream's gRPC address inside the cluster, as the translicator and the bootstrap Job use it. */
export function changeStreamAddress(pipeline: KashoPipeline): string {
  return `${childNames(pipeline.metadata.name).changeStream}:${GRPC_PORT}`;
}
