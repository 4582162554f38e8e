import { expect } from 'chai';
import { stringify } from 'yaml';
import { buildKubeTools } from '../../../hack/testing/kube-apiserver.js';
import { parsePipeline } from '../../src/api/pipeline.js';
import { createNamespace, getPipeline, kubectl, startRig, type Rig } from './support.js';

const transformsYaml = 'version: v1\ntables:\n  public.users:\n    email: FakeEmail\n';

function manifest(name: string, namespace: string, spec: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'kasho.io/v1alpha1',
    kind: 'KashoPipeline',
    metadata: { name, namespace },
    spec: {
      source: { secretName: 'source-db' },
      target: { secretName: 'target-db', urlKey: 'url' },
      transforms: { inline: transformsYaml },
      ...spec,
    },
  });
}

describe('KashoPipeline CRD on a real API server', function () {
  this.timeout(120_000);
  let rig: Rig;
  let namespace: string;

  before(async function () {
    this.timeout(30 * 60_000);
    await buildKubeTools();
    rig = await startRig();
    namespace = await createNamespace(rig, 'crd');
  });

  after(async function () {
    await rig?.server.stop();
  });

  it('installs, and kubectl apply accepts a minimal pipeline with every default filled in', async function () {
    const applied = await kubectl(rig, ['apply', '-f', '-'], manifest('orders', namespace, {}));
    expect(applied.status, applied.stderr).to.equal(0);
    expect(applied.stdout).to.contain('kashopipeline.kasho.io/orders created');
    const stored = await getPipeline(rig, namespace, 'orders');
    expect(stored.spec).to.deep.include({
      publication: 'kasho_pub',
      slot: 'kasho_slot',
      suspend: false,
      reclaimPolicy: 'Delete',
    });
    expect(stored.spec.bootstrap).to.deep.equal({ mode: 'auto', method: 'dump', backoffLimit: 2 });
    expect(stored.spec.redis).to.deep.equal({
      managed: { image: 'redis:7-alpine', storage: { size: '1Gi' } },
    });
    expect(stored.spec.source).to.deep.equal({
      secretName: 'source-db',
      hostKey: 'host',
      portKey: 'port',
      databaseKey: 'dbname',
      userKey: 'username',
      passwordKey: 'password',
    });
    // The controller's own parser reads what the API server stored, with the same defaults.
    const parsed = parsePipeline(stored);
    expect(parsed.ok, JSON.stringify(parsed)).to.equal(true);
  });

  it('answers to its short name and category', async function () {
    const byShortName = await kubectl(rig, ['get', 'kp', '-n', namespace]);
    expect(byShortName.status, byShortName.stderr).to.equal(0);
    expect(byShortName.stdout).to.match(/^NAME\s+PHASE\s+STATE\s+LAG\s+RETAINED WAL\s+AGE/);
    const wide = await kubectl(rig, ['get', 'kasho', '-n', namespace, '-o', 'wide']);
    expect(wide.stdout).to.match(/PHASE\s+STATE\s+LAG\s+RETAINED WAL\s+AGE\s+APPLIED LSN\s+REASON/);
  });

  const refused: [string, Record<string, unknown>, RegExp[]][] = [
    [
      'an unknown bootstrap mode',
      { bootstrap: { mode: 'later' } },
      [/spec\.bootstrap\.mode: Unsupported value: "later"/],
    ],
    [
      'autoComplete with mode manual',
      { bootstrap: { mode: 'manual', autoComplete: true } },
      [/spec\.bootstrap\.autoComplete: Invalid value: .*autoComplete applies to mode auto only/],
    ],
    [
      'both inline transforms and a ConfigMap',
      { transforms: { inline: transformsYaml, configMapRef: { name: 't' } } },
      [/spec\.transforms: Invalid value: .*exactly one of inline/],
    ],
    [
      'no transforms at all',
      { transforms: {} },
      [/spec\.transforms: Invalid value: .*exactly one of inline/],
    ],
    [
      'a managed and an external Redis',
      { redis: { managed: {}, external: { secretName: 'r' } } },
      [/spec\.redis: Invalid value: .*exactly one of managed and external/],
    ],
    [
      'sslMode next to a URL key',
      { target: { secretName: 'target-db', urlKey: 'url', sslMode: 'require' } },
      [/spec\.target\.sslMode: Invalid value: .*sslMode applies to the host\/port keys/],
    ],
    [
      'an env variable the operator manages',
      { translicator: { env: [{ name: 'TRANSFORM_SECRET', value: 'x' }] } },
      [/spec\.translicator\.env: Invalid value: .*env cannot set a variable the operator manages/],
    ],
    [
      'a slot name that is not an identifier',
      { slot: 'Kasho-Slot' },
      [/spec\.slot: Invalid value: "Kasho-Slot": spec\.slot in body should match/],
    ],
    [
      'a negative backoffLimit',
      { bootstrap: { backoffLimit: -1 } },
      [/spec\.bootstrap\.backoffLimit: Invalid value: -1/],
    ],
    [
      'a malformed storage size',
      { redis: { managed: { storage: { size: 'lots' } } } },
      [/spec\.redis\.managed\.storage\.size: Invalid value: "lots"/],
    ],
    ['a missing source', { source: undefined }, [/spec\.source: Required value/]],
  ];
  for (const [what, spec, messages] of refused) {
    it(`refuses ${what}, naming the field`, async function () {
      const result = await kubectl(rig, ['apply', '-f', '-'], manifest('bad', namespace, spec));
      expect(result.status).to.not.equal(0);
      for (const message of messages) expect(result.stderr).to.match(message);
    });
  }

  it('refuses a name too long for the children named after it', async function () {
    const result = await kubectl(rig, ['apply', '-f', '-'], manifest('p'.repeat(41), namespace, {}));
    expect(result.status).to.not.equal(0);
    expect(result.stderr).to.contain('metadata.name must be a DNS label of at most 40 characters');
  });

  it('refuses a change of slot on an existing pipeline', async function () {
    const created = await kubectl(
      rig,
      ['apply', '-f', '-'],
      manifest('fixed-slot', namespace, { slot: 'first' }),
    );
    expect(created.status, created.stderr).to.equal(0);
    const changed = await kubectl(
      rig,
      ['apply', '-f', '-'],
      manifest('fixed-slot', namespace, { slot: 'second' }),
    );
    expect(changed.status).to.not.equal(0);
    expect(changed.stderr).to.match(/spec\.slot: Invalid value: "second": slot cannot change/);
  });
});
