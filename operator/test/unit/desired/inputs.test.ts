import { expect } from 'chai';
import {
  referencedConfigMapNames,
  referencedSecretNames,
  resolveInputs,
  sha256,
} from '../../../src/desired/inputs.js';
import { TRANSFORMS, baseSpec, pipeline, referenced } from '../fixtures.js';

const resolved = (...args: Parameters<typeof resolveInputs>) => {
  const result = resolveInputs(...args);
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.inputs;
};
const problemsOf = (...args: Parameters<typeof resolveInputs>) => {
  const result = resolveInputs(...args);
  return result.ok ? [] : result.problems;
};

describe('resolving what a pipeline reads from Secrets and ConfigMaps', function () {
  it('names the Secrets and ConfigMaps to read', function () {
    const spec = pipeline(
      baseSpec({
        target: { secretName: 'target-db', superuser: { secretName: 'target-su' } },
        redis: { external: { secretName: 'redis' } },
        transformSecretRef: { name: 'fakes' },
        transforms: { configMapRef: { name: 'rules' } },
      }),
    ).spec;
    expect(referencedSecretNames(spec)).to.deep.equal([
      'source-db',
      'target-db',
      'source-su',
      'target-su',
      'redis',
      'fakes',
    ]);
    expect(referencedConfigMapNames(spec)).to.deep.equal(['rules']);
  });

  it('builds a URL from host/port/database/user/password keys, percent-encoding what needs it', function () {
    const inputs = resolved(pipeline(), referenced());
    expect(inputs.connection.PRIMARY_DATABASE_URL).to.equal(
      'postgresql://kasho:p%40ss%2Fw%3Ard@primary.db:5432/app',
    );
    expect(inputs.connection.REPLICA_DATABASE_URL).to.equal('postgresql://kasho:t@replica.db:5432/app');
    expect(inputs.connection.KV_URL).to.equal('redis://orders-redis:6379');
    const url = new URL(inputs.connection.PRIMARY_DATABASE_URL ?? '');
    expect(decodeURIComponent(url.password)).to.equal('p@ss/w:rd');
  });

  it('defaults the port, brackets an IPv6 host, leaves out an empty password, and adds sslmode', function () {
    const p = pipeline(baseSpec({ source: { secretName: 'source-db', sslMode: 'verify-full' } }));
    const inputs = resolved(
      p,
      referenced({
        'source-db': { data: { host: 'fd00::1', dbname: 'my db', username: 'kasho' }, resourceVersion: '1' },
      }),
    );
    expect(inputs.connection.PRIMARY_DATABASE_URL).to.equal(
      'postgresql://kasho@[fd00::1]:5432/my%20db?sslmode=verify-full',
    );
  });

  it('says which Secret, key and field is missing, and never a value', function () {
    const found = problemsOf(
      pipeline(),
      referenced({
        'source-db': {
          data: { host: 'h', username: 'kasho', password: 'TopSecret', port: 'x' },
          resourceVersion: '1',
        },
        'target-db': undefined,
        'source-su': { data: { username: 'postgres' }, resourceVersion: '1' },
      }),
    );
    expect(found).to.deep.equal([
      'Secret "source-db" has no key "dbname" (spec.source.databaseKey)',
      'Secret "source-db" key "port" (spec.source.portKey) is not a port number',
      'Secret "target-db" (spec.target.secretName) was not found in the pipeline\'s namespace',
      'Secret "source-su" has no key "password" (spec.source.superuser.passwordKey)',
    ]);
  });

  it('refuses a URL key that holds no PostgreSQL URL, without quoting it', function () {
    const found = problemsOf(
      pipeline(),
      referenced({ 'target-db': { data: { url: 'mysql://u:pw@h/db' }, resourceVersion: '1' } }),
    );
    expect(found).to.deep.equal([
      'Secret "target-db" key "url" (spec.target.urlKey) is not a URL of the form postgresql://user:password@host:5432/database',
    ]);
  });

  it('uses an external Redis URL, switching to rediss:// when tls is set', function () {
    const p = pipeline(baseSpec({ redis: { external: { secretName: 'redis', tls: true } } }));
    const refs = referenced({ redis: { data: { url: 'redis://:pw@cache:6379/2' }, resourceVersion: '1' } });
    expect(resolved(p, refs).connection.KV_URL).to.equal('rediss://:pw@cache:6379/2');
    expect(
      problemsOf(p, referenced({ redis: { data: { url: 'http://cache' }, resourceVersion: '1' } }))[0],
    ).to.contain('spec.redis.external.urlKey');
  });

  it('reads the transforms from a ConfigMap, and the transform secret from a given Secret', function () {
    const p = pipeline(
      baseSpec({
        transforms: { configMapRef: { name: 'rules', key: 't.yml' } },
        transformSecretRef: { name: 'fakes' },
      }),
    );
    const refs = referenced({ fakes: { data: { secret: 'k' }, resourceVersion: '7' } });
    expect(problemsOf(p, refs)).to.deep.equal([
      'ConfigMap "rules" (spec.transforms.configMapRef.name) was not found in the pipeline\'s namespace',
    ]);
    refs.configMaps.set('rules', { data: { 't.yml': TRANSFORMS }, resourceVersion: '3' });
    const inputs = resolved(p, refs);
    expect(inputs.transforms).to.equal(TRANSFORMS);
    expect(inputs.transformsHash).to.equal(sha256(TRANSFORMS));
    expect(inputs.transformSecret).to.deep.equal({ name: 'fakes', key: 'secret', generated: false });
    expect(resolved(pipeline(), referenced()).transformSecret).to.deep.equal({
      name: 'orders-transform-secret',
      key: 'secret',
      generated: true,
    });
  });

  it("changes a component's config hash only when something it reads changes", function () {
    const base = resolved(pipeline(), referenced()).configHash;
    const newTarget = resolved(
      pipeline(),
      referenced({
        'target-db': { data: { url: 'postgresql://kasho:new@replica.db/app' }, resourceVersion: '99' },
      }),
    ).configHash;
    expect(newTarget.changeStream).to.equal(base.changeStream);
    expect(newTarget.translicator).to.not.equal(base.translicator);
    const newTransforms = resolved(
      pipeline(baseSpec({ transforms: { inline: `${TRANSFORMS}#\n` } })),
      referenced(),
    ).configHash;
    expect(newTransforms.changeStream).to.equal(base.changeStream);
    expect(newTransforms.translicator).to.not.equal(base.translicator);
    const newSource = resolved(
      pipeline(),
      referenced({
        'source-db': {
          data: { host: 'h', dbname: 'd', username: 'u', password: 'p' },
          resourceVersion: '50',
        },
      }),
    ).configHash;
    expect(newSource.changeStream).to.not.equal(base.changeStream);
    expect(newSource.translicator).to.equal(base.translicator);
  });
});
