/**
 * What a pipeline reads from the user's Secrets and ConfigMaps, resolved without I/O: the connection URLs the
 * pods get (composed here so that a password with `@` or `/` is percent-encoded), the transforms text, and which
 * Secret holds the transform secret. Problems name the object, the key and the spec field, never a value.
 */
import { createHash } from 'node:crypto';
import type { KashoPipeline } from '../api/pipeline.js';
import type { PipelineSpec, PostgresConnection } from '../api/schema.js';
import { CONNECTION_KEYS, GENERATED_TRANSFORM_SECRET_KEY, REDIS_PORT, childNames } from './names.js';

export interface ObservedData {
  /** Decoded values by key. */
  data: Record<string, string>;
  resourceVersion: string;
}

/** The Secrets and ConfigMaps a pipeline names, by name; undefined when not found. */
export interface ReferencedObjects {
  secrets: Map<string, ObservedData | undefined>;
  configMaps: Map<string, ObservedData | undefined>;
}

export interface ResolvedInputs {
  /** The connection Secret's data: PRIMARY_DATABASE_URL, REPLICA_DATABASE_URL, KV_URL. */
  connection: Record<string, string>;
  transforms: string;
  transformsHash: string;
  transformSecret: { name: string; key: string; generated: boolean };
  /** Changes whenever something a component reads outside its pod spec changes; rolls its pods. */
  configHash: { changeStream: string; translicator: string };
}

export type InputsResult = { ok: true; inputs: ResolvedInputs } | { ok: false; problems: string[] };

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The user's Secrets a pipeline reads. */
export function referencedSecretNames(spec: PipelineSpec): string[] {
  const names = [spec.source.secretName, spec.target.secretName];
  if (spec.source.superuser) names.push(spec.source.superuser.secretName);
  if (spec.target.superuser) names.push(spec.target.superuser.secretName);
  if (spec.redis.external) names.push(spec.redis.external.secretName);
  if (spec.transformSecretRef) names.push(spec.transformSecretRef.name);
  return [...new Set(names)];
}

export function referencedConfigMapNames(spec: PipelineSpec): string[] {
  return spec.transforms.configMapRef ? [spec.transforms.configMapRef.name] : [];
}

class Problems {
  readonly list: string[] = [];

  secret(refs: ReferencedObjects, name: string, field: string): ObservedData | undefined {
    const secret = refs.secrets.get(name);
    if (!secret) this.list.push(`Secret "${name}" (${field}) was not found in the pipeline's namespace`);
    return secret;
  }

  key(object: ObservedData, kind: string, name: string, key: string, field: string): string | undefined {
    const value = object.data[key];
    if (value === undefined || value === '') {
      this.list.push(`${kind} "${name}" has no key "${key}" (${field})`);
      return undefined;
    }
    return value;
  }
}

function isUrlWithProtocol(value: string, protocols: string[]): boolean {
  try {
    const url = new URL(value);
    return protocols.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}

function postgresUrl(
  role: 'source' | 'target',
  connection: PostgresConnection,
  refs: ReferencedObjects,
  problems: Problems,
): string | undefined {
  const field = `spec.${role}`;
  const secret = problems.secret(refs, connection.secretName, `${field}.secretName`);
  if (!secret) return undefined;
  if (connection.urlKey) {
    const url = problems.key(secret, 'Secret', connection.secretName, connection.urlKey, `${field}.urlKey`);
    if (url === undefined) return undefined;
    if (!isUrlWithProtocol(url, ['postgresql:', 'postgres:'])) {
      problems.list.push(
        `Secret "${connection.secretName}" key "${connection.urlKey}" (${field}.urlKey) is not a URL of the form postgresql://user:password@host:5432/database`,
      );
      return undefined;
    }
    return url;
  }
  const get = (key: string, what: string) =>
    problems.key(secret, 'Secret', connection.secretName, key, `${field}.${what}`);
  const host = get(connection.hostKey, 'hostKey');
  const database = get(connection.databaseKey, 'databaseKey');
  const user = get(connection.userKey, 'userKey');
  const password = secret.data[connection.passwordKey];
  const port = secret.data[connection.portKey] || '5432';
  if (!/^\d{1,5}$/.test(port)) {
    problems.list.push(
      `Secret "${connection.secretName}" key "${connection.portKey}" (${field}.portKey) is not a port number`,
    );
    return undefined;
  }
  if (host === undefined || database === undefined || user === undefined) return undefined;
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const credentials = password
    ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}`
    : encodeURIComponent(user);
  const query = connection.sslMode ? `?sslmode=${connection.sslMode}` : '';
  return `postgresql://${credentials}@${hostPart}:${port}/${encodeURIComponent(database)}${query}`;
}

function redisUrl(pipeline: KashoPipeline, refs: ReferencedObjects, problems: Problems): string | undefined {
  const { external } = pipeline.spec.redis;
  if (!external) return `redis://${childNames(pipeline.metadata.name).redis}:${REDIS_PORT}`;
  const secret = problems.secret(refs, external.secretName, 'spec.redis.external.secretName');
  if (!secret) return undefined;
  const url = problems.key(
    secret,
    'Secret',
    external.secretName,
    external.urlKey,
    'spec.redis.external.urlKey',
  );
  if (url === undefined) return undefined;
  if (!isUrlWithProtocol(url, ['redis:', 'rediss:'])) {
    problems.list.push(
      `Secret "${external.secretName}" key "${external.urlKey}" (spec.redis.external.urlKey) is not a URL of the form redis://[:password@]host:6379[/db]`,
    );
    return undefined;
  }
  return external.tls ? url.replace(/^redis:\/\//, 'rediss://') : url;
}

function checkSuperuser(
  role: 'source' | 'target',
  spec: PipelineSpec,
  refs: ReferencedObjects,
  problems: Problems,
) {
  const superuser = spec[role].superuser;
  if (!superuser) return;
  const field = `spec.${role}.superuser`;
  const secret = problems.secret(refs, superuser.secretName, `${field}.secretName`);
  if (!secret) return;
  problems.key(secret, 'Secret', superuser.secretName, superuser.userKey, `${field}.userKey`);
  if (secret.data[superuser.passwordKey] === undefined) {
    problems.list.push(
      `Secret "${superuser.secretName}" has no key "${superuser.passwordKey}" (${field}.passwordKey)`,
    );
  }
}

function transformsText(spec: PipelineSpec, refs: ReferencedObjects, problems: Problems): string | undefined {
  if (spec.transforms.inline !== undefined) return spec.transforms.inline;
  const ref = spec.transforms.configMapRef;
  if (!ref) return undefined;
  const configMap = refs.configMaps.get(ref.name);
  if (!configMap) {
    problems.list.push(
      `ConfigMap "${ref.name}" (spec.transforms.configMapRef.name) was not found in the pipeline's namespace`,
    );
    return undefined;
  }
  return problems.key(configMap, 'ConfigMap', ref.name, ref.key, 'spec.transforms.configMapRef.key');
}

const versionOf = (refs: ReferencedObjects, name: string | undefined) =>
  name === undefined ? '' : (refs.secrets.get(name)?.resourceVersion ?? '');

export function resolveInputs(pipeline: KashoPipeline, refs: ReferencedObjects): InputsResult {
  const { spec } = pipeline;
  const problems = new Problems();
  const source = postgresUrl('source', spec.source, refs, problems);
  const target = postgresUrl('target', spec.target, refs, problems);
  const kv = redisUrl(pipeline, refs, problems);
  checkSuperuser('source', spec, refs, problems);
  checkSuperuser('target', spec, refs, problems);
  const transforms = transformsText(spec, refs, problems);
  let transformSecret: ResolvedInputs['transformSecret'];
  if (spec.transformSecretRef) {
    const { name, key } = spec.transformSecretRef;
    const secret = problems.secret(refs, name, 'spec.transformSecretRef.name');
    if (secret) problems.key(secret, 'Secret', name, key, 'spec.transformSecretRef.key');
    transformSecret = { name, key, generated: false };
  } else {
    transformSecret = {
      name: childNames(pipeline.metadata.name).transformSecret,
      key: GENERATED_TRANSFORM_SECRET_KEY,
      generated: true,
    };
  }
  if (problems.list.length > 0 || !source || !target || !kv || transforms === undefined) {
    return { ok: false, problems: problems.list };
  }
  const transformsHash = sha256(transforms);
  return {
    ok: true,
    inputs: {
      connection: {
        [CONNECTION_KEYS.source]: source,
        [CONNECTION_KEYS.target]: target,
        [CONNECTION_KEYS.redis]: kv,
      },
      transforms,
      transformsHash,
      transformSecret,
      configHash: {
        changeStream: sha256(
          JSON.stringify([
            versionOf(refs, spec.source.secretName),
            versionOf(refs, spec.redis.external?.secretName),
          ]),
        ).slice(0, 16),
        translicator: sha256(
          JSON.stringify([
            versionOf(refs, spec.target.secretName),
            versionOf(refs, spec.transformSecretRef?.name),
            transformsHash,
          ]),
        ).slice(0, 16),
      },
    },
  };
}
