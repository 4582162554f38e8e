import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { zodToStructuralSchema } from './openapi.js';
import {
  API_GROUP,
  API_VERSION,
  KIND,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  nameRule,
  specSchema,
  statusSchema,
} from './schema.js';

export const CRD_NAME = `${PLURAL}.${API_GROUP}`;
/** Where the generated CRD is committed, relative to the repository root. */
export const CRD_FILE = `crds/${API_GROUP}_${PLURAL}.yaml`;

/** The KashoPipeline CustomResourceDefinition, its schema generated from the zod definitions. */
export function buildCrd(): V1CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME, labels: { 'app.kubernetes.io/part-of': 'kasho' } },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: SHORT_NAMES,
        categories: ['kasho'],
      },
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'State', type: 'string', jsonPath: '.status.changeStreamState' },
            { name: 'Lag', type: 'string', jsonPath: '.status.lag' },
            { name: 'Retained WAL', type: 'string', jsonPath: '.status.retainedWal' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
            { name: 'Applied LSN', type: 'string', jsonPath: '.status.appliedLsn', priority: 1 },
            {
              name: 'Reason',
              type: 'string',
              jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
              priority: 1,
            },
          ],
          schema: {
            openAPIV3Schema: {
              description:
                'A KashoPipeline keeps a sanitized copy of a source PostgreSQL database in step with it: the operator runs pg-change-stream, Redis and pg-translicator, prepares and bootstraps, and reports progress in status.',
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: zodToStructuralSchema(specSchema),
                status: zodToStructuralSchema(statusSchema),
              },
              'x-kubernetes-validations': [{ rule: nameRule.rule, message: nameRule.message }],
            },
          },
        },
      ],
    },
  } as unknown as V1CustomResourceDefinition;
}

/** The committed file's text: a header, then the CRD as YAML in the style prettier keeps. */
export function renderCrdYaml(crd: V1CustomResourceDefinition = buildCrd()): string {
  const header = [
    '# Generated from operator/src/api/schema.ts by `npm run generate:crd -w @kasho/operator`: do not edit.',
    '# operator/test/unit/api/crd.test.ts fails when this file is stale.',
  ].join('\n');
  return `${header}\n${stringify(crd, { lineWidth: 0, singleQuote: true, indentSeq: true })}`;
}
