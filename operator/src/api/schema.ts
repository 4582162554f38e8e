/**
 * The KashoPipeline resource, defined once: the controller parses with these zod schemas, and the CRD's OpenAPI
 * schema (crds/kasho.io_kashopipelines.yaml) is generated from them, CEL rules included.
 */
import { z } from 'zod';
import { withCelRules } from './cel.js';

export const API_GROUP = 'kasho.io';
export const API_VERSION = 'v1alpha1';
export const KIND = 'KashoPipeline';
export const PLURAL = 'kashopipelines';
export const SINGULAR = 'kashopipeline';
export const SHORT_NAMES = ['kp'];

/** The longest pipeline name whose children's names (e.g. `<name>-transform-secret`, StatefulSet pods) still fit. */
export const MAX_NAME_LENGTH = 40;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const PG_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const QUANTITY =
  /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;

/** Environment variables the operator sets itself; `env` may not override them. */
export const MANAGED_ENV_NAMES = [
  'PRIMARY_DATABASE_URL',
  'REPLICA_DATABASE_URL',
  'KV_URL',
  'CHANGE_STREAM_SERVICE',
  'TRANSFORMS_FILE',
  'TRANSFORM_SECRET',
  'GRPC_PORT',
  'HTTP_PORT',
  'SLOT_NAME',
  'PUBLICATION_NAME',
  'PRIMARY_DATABASE_SU_USER',
  'PRIMARY_DATABASE_SU_PASSWORD',
  'REPLICA_DATABASE_SU_USER',
  'REPLICA_DATABASE_SU_PASSWORD',
  'BOOTSTRAP_METHOD',
  'WAIT_FOR_BOOTSTRAP',
  'RESET_ON_FAILURE',
  'DUMP_DIR',
] as const;

const objectName = (what: string) =>
  z.string().min(1).max(253).regex(DNS_SUBDOMAIN).describe(`Name of the ${what} in the pipeline's namespace`);

const secretKeyName = (description: string) =>
  z.string().min(1).max(253).regex(SECRET_KEY).describe(description);
const secretKey = (description: string, defaultKey: string) => secretKeyName(description).default(defaultKey);

/** A Kubernetes quantity ("512Mi", "0.5", 2): an integer or a string in the CRD, as controller-gen writes it. */
const quantity = z.union([z.int(), z.string().regex(QUANTITY)]).meta({ 'x-kubernetes-int-or-string': true });

/** A part of a Kubernetes object the operator passes through untouched (e.g. an EnvVar's valueFrom). */
const passThroughObject = (description: string) =>
  z
    .record(z.string(), z.unknown())
    .describe(description)
    .meta({ 'x-kubernetes-preserve-unknown-fields': true });

const resources = z
  .object({
    limits: z.record(z.string(), quantity).optional().describe('e.g. {cpu: "1", memory: 512Mi}'),
    requests: z.record(z.string(), quantity).optional().describe('e.g. {cpu: 100m, memory: 256Mi}'),
  })
  .describe("The container's resource requests and limits");

const toleration = withCelRules(
  z.object({
    key: z.string().max(316).optional(),
    operator: z.enum(['Exists', 'Equal']).optional(),
    value: z.string().max(63).optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
    tolerationSeconds: z.int().optional(),
  }),
  [
    {
      rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value)",
      message: 'a toleration with operator Exists matches every value: leave value out',
      fieldPath: '.value',
      check: (t) => t.operator !== 'Exists' || t.value === undefined,
    },
  ],
);

const envVar = withCelRules(
  z.object({
    name: z.string().min(1).max(253).describe('Variable name'),
    value: z.string().optional(),
    valueFrom: passThroughObject(
      'As in a container: secretKeyRef, configMapKeyRef, fieldRef, ...',
    ).optional(),
  }),
  [
    {
      rule: '!(has(self.value) && has(self.valueFrom))',
      message: 'set value or valueFrom, not both',
      fieldPath: '.valueFrom',
      check: (e) => !(e.value !== undefined && e.valueFrom !== undefined),
    },
  ],
);

const managedEnvList = MANAGED_ENV_NAMES.map((name) => `'${name}'`).join(', ');

const podOptions = (component: string) =>
  z
    .object({
      resources: resources.optional(),
      nodeSelector: z
        .record(z.string(), z.string())
        .optional()
        .describe('Pods run only on nodes with these labels'),
      tolerations: z.array(toleration).max(32).optional(),
      env: withCelRules(z.array(envVar).max(64), [
        {
          rule: `self.all(e, !(e.name in [${managedEnvList}]))`,
          message:
            'env cannot set a variable the operator manages (connection URLs, ports, slot, publication, transforms); use source, target, redis, slot, publication and transformSecretRef',
          check: (list) => list.every((e) => !(MANAGED_ENV_NAMES as readonly string[]).includes(e.name)),
        },
      ])
        .optional()
        .describe('Extra environment variables (e.g. LOG_LEVEL=debug)'),
    })
    .describe(`Scheduling, resources and extra environment of ${component}`);

const sslMode = z.enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']);

const superuser = z
  .object({
    secretName: objectName('Secret holding a superuser (e.g. of type kubernetes.io/basic-auth)'),
    userKey: secretKey("Key of the superuser's name", 'username'),
    passwordKey: secretKey("Key of the superuser's password", 'password'),
  })
  .describe(
    'A superuser, only for the preparation Job (creates the kasho role, DDL capture, the publication) and for dropping the publication at deletion',
  );

const postgresConnection = (role: 'source' | 'target') =>
  withCelRules(
    z
      .object({
        secretName: objectName(`Secret with the ${role} connection settings`),
        urlKey: secretKeyName(
          'Key holding a whole postgresql:// URL; when set, the host/port/database/user/password keys are not read',
        ).optional(),
        hostKey: secretKey('Key of the host name', 'host'),
        portKey: secretKey('Key of the port (the key may be absent: 5432)', 'port'),
        databaseKey: secretKey('Key of the database name', 'dbname'),
        userKey: secretKey("Key of the kasho role's name", 'username'),
        passwordKey: secretKey("Key of the kasho role's password", 'password'),
        sslMode: sslMode.optional().describe('sslmode of the connection built from the keys'),
        superuser: superuser.optional(),
      })
      .describe(
        role === 'source'
          ? 'The source (primary) database, as the kasho role: REPLICATION and read access'
          : 'The target (replica) database, as the kasho role: write access',
      ),
    [
      {
        rule: '!has(self.urlKey) || !has(self.sslMode)',
        message: 'sslMode applies to the host/port keys; with urlKey put sslmode=... into the URL',
        fieldPath: '.sslMode',
        check: (c) => c.urlKey === undefined || c.sslMode === undefined,
      },
    ],
  );

const transforms = withCelRules(
  z
    .object({
      inline: z.string().max(1_000_000).optional().describe('The transforms.yml text'),
      configMapRef: z
        .object({
          name: objectName('ConfigMap'),
          key: secretKey('Key holding transforms.yml', 'transforms.yml'),
        })
        .optional()
        .describe('A ConfigMap holding transforms.yml; edits to it roll the translicator'),
    })
    .describe('Which columns are replaced by fake values (docs/transforms.md)'),
  [
    {
      rule: 'has(self.inline) != has(self.configMapRef)',
      message: 'set exactly one of inline (the transforms.yml text) and configMapRef',
      check: (t) => (t.inline !== undefined) !== (t.configMapRef !== undefined),
    },
  ],
);

const managedRedis = z
  .object({
    image: z.string().min(1).default('redis:7-alpine').describe('Redis image'),
    storage: z
      .object({
        size: quantity
          .default('1Gi')
          .describe('Size of the PersistentVolumeClaim holding the append-only file'),
        storageClassName: z
          .string()
          .optional()
          .describe('StorageClass of the claim (default: the cluster default)'),
      })
      .prefault({}),
    ...podOptions('Redis').shape,
  })
  .describe('A Redis StatefulSet run by the operator, with its append-only file on a PersistentVolumeClaim');

const externalRedis = z
  .object({
    secretName: objectName('Secret holding the Redis URL'),
    urlKey: secretKey('Key holding redis://[:password@]host:6379[/db] (rediss:// for TLS)', 'url'),
    tls: z.boolean().default(false).describe('Connect with TLS (turns a redis:// URL into rediss://)'),
  })
  .describe('A Redis the pipeline uses but the operator does not run');

const redis = withCelRules(
  z
    .object({ managed: managedRedis.optional(), external: externalRedis.optional() })
    .describe("pg-change-stream's buffer"),
  [
    {
      rule: 'has(self.managed) != has(self.external)',
      message: 'set exactly one of managed and external',
      check: (r) => (r.managed !== undefined) !== (r.external !== undefined),
    },
  ],
);

const bootstrap = withCelRules(
  z
    .object({
      mode: z
        .enum(['auto', 'manual', 'skip'])
        .default('auto')
        .describe(
          'auto: the operator runs the bootstrap Job; manual: you load the snapshot yourself; skip: no existing data, stream from now',
        ),
      autoComplete: z
        .boolean()
        .optional()
        .describe(
          'mode auto only: call CompleteBootstrap as soon as the Job has loaded the snapshot (default true); false waits for the annotation kasho.io/complete-bootstrap',
        ),
      method: z
        .enum(['dump', 'direct'])
        .default('dump')
        .describe(
          'dump: pg_dump then pg-bootstrap-sync; direct: pg-bootstrap-sync reads the source with COPY',
        ),
      backoffLimit: z
        .int()
        .min(0)
        .max(10)
        .default(2)
        .describe('Retries of the bootstrap and preparation Jobs'),
      activeDeadlineSeconds: z.int().min(1).optional().describe('Longest run of the bootstrap Job'),
      scratchSizeLimit: quantity.optional().describe('Size limit of the scratch volume that holds the dump'),
    })
    .describe('How existing data reaches the target'),
  [
    {
      rule: "self.mode == 'auto' || !has(self.autoComplete)",
      message:
        'autoComplete applies to mode auto only: with manual the operator cannot tell when your load is done (annotate kasho.io/complete-bootstrap=true), and skip completes at once',
      fieldPath: '.autoComplete',
      check: (b) => b.mode === 'auto' || b.autoComplete === undefined,
    },
  ],
);

const prepare = z
  .object({
    replicaIdentityFull: z
      .boolean()
      .default(false)
      .describe('Set REPLICA IDENTITY FULL on tables without a primary key or replica identity index'),
    replicaOwner: z
      .boolean()
      .default(false)
      .describe(
        "Make the kasho role own the target's existing objects, so DDL from the source can alter them",
      ),
  })
  .describe('Options of the preparation Job (runs when source.superuser is set)');

export const specSchema = z
  .object({
    image: z
      .string()
      .min(1)
      .optional()
      .describe("The kasho image for every component (default: the operator's DEFAULT_IMAGE)"),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
    imagePullSecrets: z
      .array(z.object({ name: z.string().min(1) }))
      .optional()
      .describe('Secrets for pulling the images'),
    serviceAccountName: z
      .string()
      .optional()
      .describe("The pods' ServiceAccount (default: the namespace's default)"),
    source: postgresConnection('source'),
    target: postgresConnection('target'),
    publication: z
      .string()
      .regex(PG_IDENTIFIER)
      .default('kasho_pub')
      .describe('Publication on the source (created by the preparation Job)'),
    slot: withCelRules(z.string().regex(PG_IDENTIFIER), [
      {
        rule: 'self == oldSelf',
        message:
          'slot cannot change: the old slot would stay on the source and keep WAL; delete the pipeline and create it again',
        // A transition rule: only the API server knows the old value.
        check: () => true,
      },
    ])
      .default('kasho_slot')
      .describe('Logical replication slot on the source (created by the bootstrap)'),
    transforms,
    transformSecretRef: z
      .object({
        name: objectName('Secret'),
        key: secretKey('Key holding the transform secret', 'secret'),
      })
      .optional()
      .describe(
        'Key of the deterministic fakes. When absent, a random one is generated once into <name>-transform-secret and kept; changing it changes every fake value',
      ),
    redis: redis.prefault({ managed: {} }),
    prepare: prepare.prefault({}),
    bootstrap: bootstrap.prefault({}),
    suspend: z
      .boolean()
      .default(false)
      .describe(
        'Scale pg-change-stream and pg-translicator to zero; the slot stays and keeps WAL on the source',
      ),
    reclaimPolicy: z
      .enum(['Delete', 'Retain'])
      .default('Delete')
      .describe('What deleting the pipeline does to the slot and the publication on the source'),
    changeStream: podOptions('pg-change-stream').prefault({}),
    translicator: podOptions('pg-translicator').prefault({}),
    jobs: podOptions('the preparation and bootstrap Jobs').prefault({}),
  })
  .describe('Desired state of a KashoPipeline');

export const PHASES = [
  'Pending',
  'Preparing',
  'Bootstrapping',
  'WaitingForCompletion',
  'Streaming',
  'Suspended',
  'Degraded',
  'Failed',
] as const;
export const CONDITION_TYPES = ['Ready', 'Prepared', 'Bootstrapped', 'Streaming', 'Degraded'] as const;
export const CHANGE_STREAM_STATES = ['WAITING', 'ACCUMULATING', 'STREAMING'] as const;

const lsn = (what: string) =>
  z
    .string()
    .regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/)
    .optional()
    .describe(what);
const timestamp = (what: string) => z.iso.datetime().optional().describe(what);
const count = (what: string) => z.int().min(0).optional().describe(what);

export const conditionSchema = z.object({
  type: z.enum(CONDITION_TYPES),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  message: z.string().max(32768),
  lastTransitionTime: z.iso.datetime(),
  observedGeneration: z.int().min(0).optional(),
});

export const statusSchema = z
  .object({
    phase: z.enum(PHASES).optional().describe('Where the pipeline is; the Ready condition says why'),
    changeStreamState: z
      .enum(CHANGE_STREAM_STATES)
      .optional()
      .describe("pg-change-stream's bootstrap state, from GetStatus"),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .describe('The generation of the spec this status describes'),
    conditions: z
      .array(conditionSchema)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
    startLsn: lsn("The slot's consistent point: streaming starts there"),
    receivedLsn: lsn('Last WAL position pg-change-stream received'),
    confirmedLsn: lsn("The slot's confirmed flush position (applied on the target)"),
    appliedLsn: lsn('Commit LSN of the last transaction applied on the target'),
    lagBytes: count('WAL received and not yet applied to the target, in bytes'),
    lagSeconds: z.number().min(0).optional().describe('Age of the last applied source commit, in seconds'),
    lag: z.string().optional().describe('lagSeconds and lagBytes for people, e.g. "2s, 1.4 MiB"'),
    retainedWalBytes: count('WAL the slot keeps on the source, in bytes'),
    retainedWal: z.string().optional().describe('retainedWalBytes for people, e.g. "1.2 GiB"'),
    bootstrap: z
      .object({
        jobName: z.string().optional(),
        rows: count('Snapshot events loaded into the buffer'),
        tables: count('Tables in the snapshot, when known'),
        accumulatedChanges: count('Changes captured while the snapshot was loading'),
        startedAt: timestamp('When the bootstrap Job started'),
        finishedAt: timestamp('When the snapshot was loaded (the Job succeeded)'),
        completedAt: timestamp('When CompleteBootstrap turned the change-stream to STREAMING'),
        completedBy: z.enum(['autoComplete', 'annotation', 'skip']).optional(),
      })
      .optional(),
    prepare: z
      .object({
        jobName: z.string().optional(),
        specHash: z.string().optional().describe('The preparation settings that succeeded'),
        completedAt: timestamp('When the preparation Job succeeded'),
      })
      .optional(),
    cleanup: z
      .object({
        attempts: count('Attempts to drop the slot and the publication'),
        lastAttemptAt: timestamp('When the last attempt was made'),
        lastError: z.string().optional(),
      })
      .optional(),
    epoch: z.string().optional().describe("The change-stream's bootstrap epoch"),
    transformsHash: z.string().optional().describe('sha256 of the transforms.yml the translicator runs with'),
    transformSecretName: z.string().optional().describe('The Secret holding the transform secret'),
    lastError: z
      .string()
      .optional()
      .describe('The last failure, without secrets or row values; empty when healthy'),
  })
  .describe('Observed state of a KashoPipeline');

export type PipelineSpec = z.output<typeof specSchema>;
export type PipelineSpecInput = z.input<typeof specSchema>;
export type PipelineStatus = z.output<typeof statusSchema>;
export type Condition = z.output<typeof conditionSchema>;
export type ConditionType = (typeof CONDITION_TYPES)[number];
export type Phase = (typeof PHASES)[number];
export type ChangeStreamState = (typeof CHANGE_STREAM_STATES)[number];
export type PodOptions = PipelineSpec['changeStream'];
export type PostgresConnection = PipelineSpec['source'];

/** Rules on the whole object: names the children derive from the pipeline's name must stay valid. */
export const nameRule = {
  rule: `self.metadata.name.size() <= ${MAX_NAME_LENGTH} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')`,
  message: `metadata.name must be a DNS label of at most ${MAX_NAME_LENGTH} characters starting with a letter (the operator names Services and StatefulSets after it)`,
  check: (name: string) => name.length <= MAX_NAME_LENGTH && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name),
};
