import { expect } from 'chai';
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import {
  bootstrapJob,
  changeStreamDeployment,
  changeStreamService,
  connectionSecret,
  generatedTransformSecret,
  prepareJob,
  prepareSpecHash,
  redisService,
  redisStatefulSet,
  transformsConfigMap,
  translicatorDeployment,
  translicatorService,
} from '../../../src/desired/objects.js';
import { CONFIG_HASH_ANNOTATION } from '../../../src/desired/names.js';
import { TRANSFORMS, baseSpec, context, pipeline, referenced } from '../fixtures.js';

const owner = {
  apiVersion: 'kasho.io/v1alpha1',
  kind: 'KashoPipeline',
  name: 'orders',
  uid: 'uid-1',
  controller: true,
  blockOwnerDeletion: true,
};

function envOf(container: V1Container | undefined): Record<string, unknown> {
  return Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
}

function expectHardened(pod: V1PodSpec | undefined, uid = 10001): void {
  expect(pod?.securityContext).to.deep.include({ runAsNonRoot: true, runAsUser: uid, fsGroup: uid });
  expect(pod?.securityContext?.seccompProfile).to.deep.equal({ type: 'RuntimeDefault' });
  expect(pod?.automountServiceAccountToken).to.equal(false);
  for (const container of pod?.containers ?? []) {
    expect(container.securityContext).to.deep.equal({
      runAsNonRoot: true,
      runAsUser: uid,
      runAsGroup: uid,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    // A read-only root needs somewhere to write.
    expect(container.volumeMounts?.some((m) => m.mountPath === '/tmp')).to.equal(true);
  }
}

describe('desired objects', function () {
  const ctx = context();

  it('name every child after the pipeline, label it, and make the pipeline its controller', function () {
    const objects = [
      transformsConfigMap(ctx),
      connectionSecret(ctx),
      generatedTransformSecret(ctx, 'r'),
      redisStatefulSet(ctx),
      redisService(ctx),
      changeStreamDeployment(ctx),
      changeStreamService(ctx),
      translicatorDeployment(ctx),
      translicatorService(ctx),
      prepareJob(ctx),
      bootstrapJob(ctx),
    ];
    expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`)).to.deep.equal([
      'ConfigMap/orders-transforms',
      'Secret/orders-connection',
      'Secret/orders-transform-secret',
      'StatefulSet/orders-redis',
      'Service/orders-redis',
      'Deployment/orders-change-stream',
      'Service/orders-change-stream',
      'Deployment/orders-translicator',
      'Service/orders-translicator',
      'Job/orders-prepare',
      'Job/orders-bootstrap',
    ]);
    for (const object of objects) {
      expect(object.metadata?.namespace).to.equal('data');
      expect(object.metadata?.ownerReferences).to.deep.equal([owner]);
      expect(object.metadata?.labels).to.include({
        'app.kubernetes.io/managed-by': 'kasho-operator',
        'app.kubernetes.io/instance': 'orders',
        'kasho.io/pipeline': 'orders',
      });
    }
  });

  it('put transforms.yml in the ConfigMap and the composed URLs, base64, in the connection Secret', function () {
    expect(transformsConfigMap(ctx).data).to.deep.equal({ 'transforms.yml': TRANSFORMS });
    const data = connectionSecret(ctx).data ?? {};
    expect(Object.keys(data)).to.deep.equal(['PRIMARY_DATABASE_URL', 'REPLICA_DATABASE_URL', 'KV_URL']);
    expect(Buffer.from(data.KV_URL ?? '', 'base64').toString()).to.equal('redis://orders-redis:6379');
  });

  it('run pg-change-stream: one pod at a time, its env from the connection Secret, probes on /healthz and /readyz', function () {
    const deployment = changeStreamDeployment(ctx);
    expect(deployment.spec?.replicas).to.equal(1);
    expect(deployment.spec?.strategy).to.deep.equal({ type: 'Recreate' });
    const pod = deployment.spec?.template.spec;
    expectHardened(pod);
    const container = pod?.containers[0];
    expect(container?.image).to.equal('kasho:1.0.0');
    expect(container?.command).to.deep.equal(['/app/pg-change-stream']);
    expect(container?.ports).to.deep.equal([
      { name: 'grpc', containerPort: 8080 },
      { name: 'http', containerPort: 9090 },
    ]);
    expect(envOf(container)).to.deep.equal({
      PRIMARY_DATABASE_URL: { secretKeyRef: { name: 'orders-connection', key: 'PRIMARY_DATABASE_URL' } },
      KV_URL: { secretKeyRef: { name: 'orders-connection', key: 'KV_URL' } },
      GRPC_PORT: '8080',
      HTTP_PORT: '9090',
      SLOT_NAME: 'kasho_slot',
      PUBLICATION_NAME: 'kasho_pub',
    });
    expect(container?.readinessProbe?.httpGet).to.deep.equal({ path: '/readyz', port: 'http' });
    expect(container?.livenessProbe?.httpGet).to.deep.equal({ path: '/healthz', port: 'http' });
    expect(deployment.spec?.selector.matchLabels).to.deep.equal({
      'app.kubernetes.io/name': 'kasho',
      'app.kubernetes.io/instance': 'orders',
      'app.kubernetes.io/component': 'change-stream',
    });
    expect(deployment.spec?.template.metadata?.annotations?.[CONFIG_HASH_ANNOTATION]).to.equal(
      ctx.inputs.configHash.changeStream,
    );
  });

  it('run exactly one pg-translicator, never two at once, with transforms.yml mounted and the transform secret', function () {
    const deployment = translicatorDeployment(ctx);
    expect(deployment.spec?.replicas).to.equal(1);
    expect(deployment.spec?.strategy).to.deep.equal({ type: 'Recreate' });
    const pod = deployment.spec?.template.spec;
    expectHardened(pod);
    const container = pod?.containers[0];
    expect(envOf(container)).to.deep.equal({
      CHANGE_STREAM_SERVICE: 'orders-change-stream:8080',
      REPLICA_DATABASE_URL: { secretKeyRef: { name: 'orders-connection', key: 'REPLICA_DATABASE_URL' } },
      TRANSFORM_SECRET: { secretKeyRef: { name: 'orders-transform-secret', key: 'secret' } },
      TRANSFORMS_FILE: '/app/config/transforms.yml',
      HTTP_PORT: '9090',
    });
    expect(container?.volumeMounts).to.deep.include({
      name: 'config',
      mountPath: '/app/config',
      readOnly: true,
    });
    expect(pod?.volumes).to.deep.include({ name: 'config', configMap: { name: 'orders-transforms' } });
    expect(container?.readinessProbe?.httpGet?.path).to.equal('/readyz');
    expect(container?.livenessProbe?.httpGet?.path).to.equal('/healthz');
  });

  it('roll the translicator, and only it, when the transforms change', function () {
    const changed = context(pipeline(baseSpec({ transforms: { inline: `${TRANSFORMS}# more\n` } })));
    const hash = (d: ReturnType<typeof translicatorDeployment>) =>
      d.spec?.template.metadata?.annotations?.[CONFIG_HASH_ANNOTATION];
    expect(hash(translicatorDeployment(changed))).to.not.equal(hash(translicatorDeployment(ctx)));
    expect(hash(changeStreamDeployment(changed))).to.equal(hash(changeStreamDeployment(ctx)));
  });

  it('scale both services to zero when suspended', function () {
    const suspended = context(pipeline(baseSpec({ suspend: true })));
    expect(changeStreamDeployment(suspended).spec?.replicas).to.equal(0);
    expect(translicatorDeployment(suspended).spec?.replicas).to.equal(0);
  });

  it('pass the per-component resources, scheduling and extra env through', function () {
    const tuned = context(
      pipeline(
        baseSpec({
          imagePullPolicy: 'Always',
          imagePullSecrets: [{ name: 'registry' }],
          translicator: {
            resources: { limits: { memory: '1Gi' } },
            nodeSelector: { pool: 'data' },
            tolerations: [{ key: 'dedicated', operator: 'Exists' }],
            env: [{ name: 'LOG_LEVEL', value: 'debug' }],
          },
        }),
      ),
    );
    const pod = translicatorDeployment(tuned).spec?.template.spec;
    expect(pod?.nodeSelector).to.deep.equal({ pool: 'data' });
    expect(pod?.tolerations).to.deep.equal([{ key: 'dedicated', operator: 'Exists' }]);
    expect(pod?.imagePullSecrets).to.deep.equal([{ name: 'registry' }]);
    expect(pod?.containers[0]?.resources).to.deep.equal({ limits: { memory: '1Gi' } });
    expect(pod?.containers[0]?.imagePullPolicy).to.equal('Always');
    expect(envOf(pod?.containers[0]).LOG_LEVEL).to.equal('debug');
    expect(changeStreamDeployment(tuned).spec?.template.spec?.nodeSelector).to.equal(undefined);
  });

  it('use the operator default image when spec.image is empty', function () {
    const spec = baseSpec();
    delete spec.image;
    expect(
      changeStreamDeployment(context(pipeline(spec))).spec?.template.spec?.containers[0]?.image,
    ).to.equal('kasho:default');
  });

  it('run Redis with its append-only file on a claim, as the redis user', function () {
    const sized = context(
      pipeline(baseSpec({ redis: { managed: { storage: { size: '5Gi', storageClassName: 'fast' } } } })),
    );
    const statefulSet = redisStatefulSet(sized);
    expect(statefulSet.spec?.serviceName).to.equal('orders-redis');
    expect(statefulSet.spec?.replicas).to.equal(1);
    const container = statefulSet.spec?.template.spec?.containers[0];
    expect(container?.args).to.include.members(['--appendonly', 'yes']);
    expect(container?.volumeMounts).to.deep.include({ name: 'data', mountPath: '/data' });
    expectHardened(statefulSet.spec?.template.spec, 999);
    expect(statefulSet.spec?.volumeClaimTemplates?.[0]?.spec).to.deep.equal({
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'fast',
      resources: { requests: { storage: '5Gi' } },
    });
    expect(redisService(sized).spec?.clusterIP).to.equal('None');
  });

  it('prepare with the script, the superusers and a bounded, never-restarting Job', function () {
    const job = prepareJob(ctx);
    expect(job.spec?.backoffLimit).to.equal(2);
    const pod = job.spec?.template.spec;
    expect(pod?.restartPolicy).to.equal('Never');
    expectHardened(pod);
    const container = pod?.containers[0];
    expect(container?.command).to.deep.equal(['/app/scripts/prepare-primary-db.sh']);
    // No target superuser: only the source is prepared.
    expect(container?.args).to.deep.equal(['--publication', 'kasho_pub', '--skip-replica']);
    expect(envOf(container)).to.deep.equal({
      PRIMARY_DATABASE_URL: { secretKeyRef: { name: 'orders-connection', key: 'PRIMARY_DATABASE_URL' } },
      REPLICA_DATABASE_URL: { secretKeyRef: { name: 'orders-connection', key: 'REPLICA_DATABASE_URL' } },
      PRIMARY_DATABASE_SU_USER: { secretKeyRef: { name: 'source-su', key: 'username' } },
      PRIMARY_DATABASE_SU_PASSWORD: { secretKeyRef: { name: 'source-su', key: 'password' } },
    });
    const both = context(
      pipeline(
        baseSpec({
          target: { secretName: 'target-db', urlKey: 'url', superuser: { secretName: 'target-su' } },
          prepare: { replicaIdentityFull: true },
          publication: 'orders_pub',
        }),
      ),
      referenced({ 'target-su': { data: { username: 'postgres', password: 'x' }, resourceVersion: '1' } }),
    );
    expect(prepareJob(both).spec?.template.spec?.containers[0]?.args).to.deep.equal([
      '--publication',
      'orders_pub',
      '--replica-identity-full',
    ]);
    expect(prepareSpecHash(both.pipeline)).to.not.equal(prepareSpecHash(ctx.pipeline));
  });

  it('bootstrap without completing: no WAIT_FOR_BOOTSTRAP, reset on failure, the chosen method', function () {
    const job = bootstrapJob(
      context(pipeline(baseSpec({ bootstrap: { method: 'direct', scratchSizeLimit: '20Gi' } }))),
    );
    const pod = job.spec?.template.spec;
    expect(pod?.restartPolicy).to.equal('Never');
    const container = pod?.containers[0];
    expect(container?.command).to.deep.equal(['/app/scripts/bootstrap-kasho.sh']);
    const env = envOf(container);
    expect(env).to.not.have.property('WAIT_FOR_BOOTSTRAP');
    expect(env).to.deep.include({
      CHANGE_STREAM_SERVICE: 'orders-change-stream:8080',
      BOOTSTRAP_METHOD: 'direct',
      RESET_ON_FAILURE: 'true',
      DUMP_DIR: '/tmp',
    });
    expect(container?.stdin).to.equal(undefined);
    expect(pod?.volumes).to.deep.equal([{ name: 'tmp', emptyDir: { sizeLimit: '20Gi' } }]);
  });

  it('generate the transform secret from the random value given', function () {
    const secret = generatedTransformSecret(ctx, 'abc');
    expect(secret.data).to.deep.equal({ secret: Buffer.from('abc').toString('base64') });
  });
});
