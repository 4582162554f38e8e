import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import * as prettier from 'prettier';
import { z } from 'zod';
import { CRD_FILE, buildCrd, renderCrdYaml } from '../../../src/api/crd.js';
import { structural, zodToStructuralSchema, type JsonSchema } from '../../../src/api/openapi.js';

const committed = fileURLToPath(new URL(`../../../../${CRD_FILE}`, import.meta.url));

/** Every node of a schema, with its path. */
function* walk(node: JsonSchema, path = ''): Generator<[string, JsonSchema]> {
  yield [path, node];
  for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, JsonSchema>)) {
    yield* walk(child, `${path}.${name}`);
  }
  if (node.items) yield* walk(node.items as JsonSchema, `${path}[]`);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    yield* walk(node.additionalProperties as JsonSchema, `${path}[*]`);
  }
}

describe('the KashoPipeline CRD', function () {
  it('is committed as generated: run `npm run generate:crd -w @kasho/operator` after changing the schema', function () {
    expect(readFileSync(committed, 'utf8')).to.equal(renderCrdYaml());
  });

  it('is already formatted the way prettier formats YAML', async function () {
    const options = (await prettier.resolveConfig(committed)) ?? {};
    expect(await prettier.check(renderCrdYaml(), { ...options, parser: 'yaml' })).to.equal(true);
  });

  it('has a structural schema: a type on every node, or an int-or-string / preserve-unknown-fields extension', function () {
    const schema = buildCrd().spec.versions[0]?.schema?.openAPIV3Schema as JsonSchema;
    let nodes = 0;
    for (const [path, node] of walk(schema)) {
      nodes++;
      const typed =
        typeof node.type === 'string' ||
        node['x-kubernetes-int-or-string'] === true ||
        node['x-kubernetes-preserve-unknown-fields'] === true;
      expect(typed, `${path || '<root>'} has no type`).to.equal(true);
      expect(node, path).to.not.have.any.keys('oneOf', 'allOf', 'not', '$ref', 'nullable');
      if (node.properties) expect(node, path).to.not.have.property('additionalProperties');
    }
    expect(nodes).to.be.greaterThan(100);
  });

  it('carries the cross-field rules as x-kubernetes-validations', function () {
    const text = renderCrdYaml();
    for (const rule of [
      "self.mode == 'auto' || !has(self.autoComplete)",
      'has(self.inline) != has(self.configMapRef)',
      'has(self.managed) != has(self.external)',
      '!has(self.urlKey) || !has(self.sslMode)',
      'self == oldSelf',
      'self.metadata.name.size() <= 40',
    ]) {
      expect(text).to.contain(rule);
    }
  });

  it('has the printer columns kubectl get shows, the wide ones at priority 1', function () {
    const columns = buildCrd().spec.versions[0]?.additionalPrinterColumns ?? [];
    expect(columns.filter((c) => !c.priority).map((c) => c.name)).to.deep.equal([
      'Phase',
      'State',
      'Lag',
      'Retained WAL',
      'Age',
    ]);
    expect(columns.filter((c) => c.priority === 1).map((c) => c.name)).to.deep.equal([
      'Applied LSN',
      'Reason',
    ]);
  });
});

describe('zod to structural schema', function () {
  it('keeps defaults, enums, patterns and bounds, and drops zod artefacts', function () {
    const schema = zodToStructuralSchema(
      z.object({
        mode: z.enum(['a', 'b']).default('a'),
        count: z.int().min(1),
        at: z.iso.datetime().optional(),
        name: z.string().regex(/^[a-z]+$/),
      }),
    );
    expect(schema).to.deep.equal({
      type: 'object',
      properties: {
        mode: { type: 'string', enum: ['a', 'b'], default: 'a' },
        count: { type: 'integer', minimum: 1 },
        at: { type: 'string', format: 'date-time' },
        name: { type: 'string', pattern: '^[a-z]+$' },
      },
      required: ['count', 'name'],
    });
  });

  it('refuses what a structural schema cannot say, naming the path', function () {
    expect(() => zodToStructuralSchema(z.object({ either: z.union([z.string(), z.boolean()]) }))).to.throw(
      '.either: "anyOf" cannot be expressed',
    );
    expect(() => zodToStructuralSchema(z.object({ maybe: z.string().nullable() }))).to.throw(
      '.maybe: "nullable" cannot be expressed',
    );
    expect(() => structural({ properties: {} })).to.throw('<root>: a node without a type');
  });
});
