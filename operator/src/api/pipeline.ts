import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { z } from 'zod';
import {
  API_GROUP,
  API_VERSION,
  KIND,
  nameRule,
  specSchema,
  statusSchema,
  type PipelineSpec,
  type PipelineStatus,
} from './schema.js';

export const API_VERSION_STRING = `${API_GROUP}/${API_VERSION}`;

/** Annotations a user sets on a KashoPipeline to ask for something once. */
export const ANNOTATIONS = {
  completeBootstrap: 'kasho.io/complete-bootstrap',
  resetBootstrap: 'kasho.io/reset-bootstrap',
  /** Lets deletion finish although the slot and publication could not be dropped on the source. */
  skipSourceCleanup: 'kasho.io/skip-source-cleanup',
} as const;

export const FINALIZER = 'kasho.io/source-cleanup';

/** A KashoPipeline as stored by the API server, before validation. */
export interface KashoPipelineObject {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  spec?: unknown;
  status?: unknown;
}

/** A KashoPipeline whose spec passed validation. */
export interface KashoPipeline {
  metadata: V1ObjectMeta & { name: string; namespace: string; uid: string };
  spec: PipelineSpec;
  status: PipelineStatus;
}

export type ParsedPipeline = { ok: true; pipeline: KashoPipeline } | { ok: false; problems: string[] };

function describeIssues(prefix: string, error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].join('.');
    return `${path}: ${issue.message}`;
  });
}

/**
 * Validates a stored object with the same rules as the CRD (defaults included, so an object written before a
 * default was added still parses). Problems name the field; they quote no values.
 */
export function parsePipeline(object: KashoPipelineObject): ParsedPipeline {
  const problems: string[] = [];
  const { name, namespace, uid } = object.metadata;
  if (!name || !namespace || !uid) problems.push('metadata: name, namespace and uid are required');
  else if (!nameRule.check(name)) problems.push(`metadata.name: ${nameRule.message}`);
  const spec = specSchema.safeParse(object.spec ?? {});
  if (!spec.success) problems.push(...describeIssues('spec', spec.error));
  if (problems.length > 0 || !spec.success) return { ok: false, problems };
  // A status written by another version that no longer parses is rebuilt from scratch rather than trusted.
  const status = statusSchema.safeParse(object.status ?? {});
  return {
    ok: true,
    pipeline: {
      metadata: object.metadata as KashoPipeline['metadata'],
      spec: spec.data,
      status: status.success ? status.data : {},
    },
  };
}

export function pipelineKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export { API_GROUP, API_VERSION, KIND };
