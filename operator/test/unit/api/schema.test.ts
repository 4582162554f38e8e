import { expect } from 'chai';
import { parsePipeline } from '../../../src/api/pipeline.js';
import { specSchema, type PipelineSpecInput } from '../../../src/api/schema.js';
import { TRANSFORMS, baseSpec } from '../fixtures.js';

function problems(spec: unknown, name = 'orders'): string[] {
  const parsed = parsePipeline({ metadata: { name, namespace: 'data', uid: 'u' }, spec });
  return parsed.ok ? [] : parsed.problems;
}

describe('KashoPipeline spec validation and defaults', function () {
  it('fills in every default of a minimal spec, as the API server does', function () {
    const spec = specSchema.parse({
      source: { secretName: 's' },
      target: { secretName: 't', urlKey: 'url' },
      transforms: { inline: TRANSFORMS },
    });
    expect(spec).to.deep.include({
      publication: 'kasho_pub',
      slot: 'kasho_slot',
      suspend: false,
      reclaimPolicy: 'Delete',
    });
    expect(spec.bootstrap).to.deep.equal({ mode: 'auto', method: 'dump', backoffLimit: 2 });
    expect(spec.redis).to.deep.equal({ managed: { image: 'redis:7-alpine', storage: { size: '1Gi' } } });
    expect(spec.prepare).to.deep.equal({ replicaIdentityFull: false, replicaOwner: false });
    expect(spec.source).to.deep.equal({
      secretName: 's',
      hostKey: 'host',
      portKey: 'port',
      databaseKey: 'dbname',
      userKey: 'username',
      passwordKey: 'password',
    });
    expect(spec.target.urlKey).to.equal('url');
    expect(spec.changeStream).to.deep.equal({});
    expect(spec.image).to.equal(undefined);
  });

  it('accepts a full spec', function () {
    const full: PipelineSpecInput = {
      ...baseSpec(),
      imagePullPolicy: 'IfNotPresent',
      imagePullSecrets: [{ name: 'registry' }],
      target: { secretName: 't', sslMode: 'require', superuser: { secretName: 'tsu', userKey: 'user' } },
      transforms: { configMapRef: { name: 'transforms' } },
      transformSecretRef: { name: 'fakes' },
      redis: { external: { secretName: 'redis', tls: true } },
      bootstrap: {
        mode: 'auto',
        autoComplete: false,
        method: 'direct',
        backoffLimit: 0,
        scratchSizeLimit: '10Gi',
      },
      reclaimPolicy: 'Retain',
      translicator: {
        resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: 1 } },
        nodeSelector: { pool: 'data' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'data', effect: 'NoSchedule' }],
        env: [
          { name: 'LOG_LEVEL', value: 'debug' },
          { name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
        ],
      },
    };
    expect(problems(full)).to.deep.equal([]);
  });

  // The same cases the API server refuses (operator/test/integration/crd.test.ts): the controller's zod schema
  // carries the CEL rules' TypeScript halves, so both agree.
  const refused: [string, PipelineSpecInput, string][] = [
    [
      'autoComplete with mode manual',
      baseSpec({ bootstrap: { mode: 'manual', autoComplete: true } }),
      'spec.bootstrap.autoComplete: autoComplete applies to mode auto only',
    ],
    [
      'autoComplete with mode skip',
      baseSpec({ bootstrap: { mode: 'skip', autoComplete: false } }),
      'spec.bootstrap.autoComplete:',
    ],
    [
      'inline and configMapRef',
      baseSpec({ transforms: { inline: 'x', configMapRef: { name: 'c' } } }),
      'spec.transforms: set exactly one of inline',
    ],
    ['no transforms', baseSpec({ transforms: {} }), 'spec.transforms: set exactly one of inline'],
    [
      'managed and external Redis',
      baseSpec({ redis: { managed: {}, external: { secretName: 'r' } } }),
      'spec.redis: set exactly one of managed and external',
    ],
    ['no Redis at all', baseSpec({ redis: {} }), 'spec.redis: set exactly one of managed and external'],
    [
      'sslMode with urlKey',
      baseSpec({ target: { secretName: 't', urlKey: 'url', sslMode: 'require' } }),
      'spec.target.sslMode: sslMode applies to the host/port keys',
    ],
    [
      'a managed env variable',
      baseSpec({ changeStream: { env: [{ name: 'KV_URL', value: 'redis://x' }] } }),
      'spec.changeStream.env: env cannot set a variable the operator manages',
    ],
    [
      'value and valueFrom',
      baseSpec({ jobs: { env: [{ name: 'A', value: 'x', valueFrom: {} }] } }),
      'spec.jobs.env.0.valueFrom: set value or valueFrom, not both',
    ],
    [
      'a value with operator Exists',
      baseSpec({ translicator: { tolerations: [{ operator: 'Exists', value: 'x' }] } }),
      'spec.translicator.tolerations.0.value: a toleration with operator Exists',
    ],
  ];
  for (const [what, spec, message] of refused) {
    it(`refuses ${what}`, function () {
      const found = problems(spec);
      expect(
        found.some((p) => p.startsWith(message)),
        found.join('\n'),
      ).to.equal(true);
    });
  }

  it('refuses enum, pattern and range violations, naming the field', function () {
    expect(problems(baseSpec({ bootstrap: { mode: 'later' as 'auto' } })).join('\n')).to.contain(
      'spec.bootstrap.mode:',
    );
    expect(problems(baseSpec({ slot: 'Bad-Slot' })).join('\n')).to.contain('spec.slot:');
    expect(problems(baseSpec({ bootstrap: { backoffLimit: 11 } })).join('\n')).to.contain(
      'spec.bootstrap.backoffLimit:',
    );
    expect(problems(baseSpec({ redis: { managed: { storage: { size: 'lots' } } } })).join('\n')).to.contain(
      'spec.redis.managed.storage.size:',
    );
  });

  it('refuses a pipeline name its children cannot be named after', function () {
    expect(problems(baseSpec(), 'x'.repeat(41))[0]).to.contain(
      'metadata.name must be a DNS label of at most 40',
    );
    expect(problems(baseSpec(), '1orders')[0]).to.contain('metadata.name');
    expect(problems(baseSpec(), 'o'.repeat(40))).to.deep.equal([]);
  });

  it('rebuilds a status it cannot read instead of trusting it', function () {
    const parsed = parsePipeline({
      metadata: { name: 'orders', namespace: 'data', uid: 'u' },
      spec: baseSpec(),
      status: { phase: 'Exploded' },
    });
    expect(parsed.ok && parsed.pipeline.status).to.deep.equal({});
  });
});
