import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  ApiException,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  Watch,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { KubeConfig, V1CustomResourceDefinition } from '@kubernetes/client-node';
import {
  buildKubeTools,
  createCrdAndWait,
  grpcurlPath,
  helmPath,
  kubectlPath,
  pinnedVersions,
  startKubeApiServer,
} from '../testing/kube-apiserver.js';
import type { KubeApiServer } from '../testing/kube-apiserver.js';

const chartDir = fileURLToPath(new URL('./fixtures/minimal-chart', import.meta.url));
const group = 'rig.kasho.test';
const version = 'v1';
const plural = 'widgets';

interface Widget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec: { size: number };
  status?: { phase?: string };
}

const widgetCrd: V1CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.${group}` },
  spec: {
    group,
    scope: 'Namespaced',
    names: { plural, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: version,
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: { type: 'object', properties: { size: { type: 'integer' } } },
              status: { type: 'object', properties: { phase: { type: 'string' } } },
            },
          },
        },
      },
    ],
  },
};

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${file} ${args.join(' ')} exited with ${code}:\n${stderr}${stdout}`));
    });
    child.stdin.end(input ?? '');
  });
}

/** Processes whose command line mentions text (the test's own process excluded). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (cmdline.includes(text)) found.push(`${entry} ${cmdline}`);
  }
  return found;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Opens a watch, retrying while the API server answers 429 (its watch cache for a just-established CRD is still
 * initializing). Later failures go to onDone.
 */
async function openWatch(
  kubeConfig: KubeConfig,
  path: string,
  query: Record<string, string>,
  onEvent: (type: string, object: unknown) => void,
  onDone: (error: unknown) => void,
): Promise<AbortController> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    let opening = true;
    let rejected = false;
    const controller = await new Watch(kubeConfig).watch(path, query, onEvent, (error: unknown) => {
      const status = (error as { statusCode?: number } | null)?.statusCode;
      if (opening && status === 429 && Date.now() < deadline) rejected = true;
      else onDone(error);
    });
    opening = false;
    if (!rejected) return controller;
    await sleep(200);
  }
}

describe('Kubernetes test rig (hack/k8s)', function () {
  before(async function () {
    // A no-op when hack/test.sh already built the tools; a cold build takes about 9 minutes.
    this.timeout(30 * 60_000);
    await buildKubeTools();
  });

  describe('one API server', function () {
    let server: KubeApiServer | undefined;

    before(async function () {
      this.timeout(180_000);
      server = await startKubeApiServer();
    });

    after(async function () {
      this.timeout(90_000);
      if (!server) return;
      await server.stop();
      expect(processesMentioning(server.dir)).to.deep.equal([]);
      expect(existsSync(server.dir)).to.equal(false);
    });

    it('serves a CRD with a status subresource, and a watch sees a status update', async function () {
      this.timeout(60_000);
      const { kubeConfig } = server!;
      const objects = kubeConfig.makeApiClient(CustomObjectsApi);
      const namespace = 'default';
      await createCrdAndWait(kubeConfig, widgetCrd);

      // Opened at once, the watch meets the 429 of the CRD's initializing watch cache.
      let seen: (widget: Widget) => void = () => undefined;
      let failed: (error: unknown) => void = () => undefined;
      const sawReady = new Promise<Widget>((resolve, reject) => {
        seen = resolve;
        failed = reject;
      });
      const watch = await openWatch(
        kubeConfig,
        `/apis/${group}/${version}/namespaces/${namespace}/${plural}`,
        { fieldSelector: 'metadata.name=w1' },
        (type, object) => {
          const widget = object as Widget;
          if (type === 'MODIFIED' && widget.status?.phase === 'Ready') seen(widget);
        },
        (error) => failed(error ?? new Error('the watch closed before the status update arrived')),
      );
      try {
        const body: Widget = {
          apiVersion: `${group}/${version}`,
          kind: 'Widget',
          metadata: { name: 'w1' },
          spec: { size: 3 },
        };
        await objects.createNamespacedCustomObject({ group, version, namespace, plural, body });
        const read = (await objects.getNamespacedCustomObject({
          group,
          version,
          namespace,
          plural,
          name: 'w1',
        })) as Widget;
        expect(read.spec).to.deep.equal({ size: 3 });
        expect(read.status).to.equal(undefined);

        const patched = (await objects.patchNamespacedCustomObjectStatus(
          { group, version, namespace, plural, name: 'w1', body: { status: { phase: 'Ready' } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        )) as Widget;
        expect(patched.status).to.deep.equal({ phase: 'Ready' });
        expect(patched.spec).to.deep.equal({ size: 3 });
        const watched = await sawReady;
        expect(watched.metadata.resourceVersion).to.equal(patched.metadata.resourceVersion);
        expect(watched.spec).to.deep.equal({ size: 3 });
      } finally {
        watch.abort();
      }
    });

    it('stores a Deployment and a Job (nothing runs them)', async function () {
      const { kubeConfig } = server!;
      const apps = kubeConfig.makeApiClient(AppsV1Api);
      const batch = kubeConfig.makeApiClient(BatchV1Api);
      const namespace = 'default';
      const labels = { app: 'rig' };
      const containers = [{ name: 'main', image: 'registry.invalid/rig:1', command: ['true'] }];
      await apps.createNamespacedDeployment({
        namespace,
        body: {
          metadata: { name: 'rig' },
          spec: {
            replicas: 2,
            selector: { matchLabels: labels },
            template: { metadata: { labels }, spec: { containers } },
          },
        },
      });
      await batch.createNamespacedJob({
        namespace,
        body: {
          metadata: { name: 'rig' },
          spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers } } },
        },
      });

      const deployment = await apps.readNamespacedDeployment({ namespace, name: 'rig' });
      expect(deployment.spec?.replicas).to.equal(2);
      expect(deployment.spec?.template.spec?.containers[0]?.image).to.equal('registry.invalid/rig:1');
      expect(deployment.status?.readyReplicas).to.equal(undefined);
      const job = await batch.readNamespacedJob({ namespace, name: 'rig' });
      expect(job.spec?.template.spec?.restartPolicy).to.equal('Never');
      expect(job.status?.succeeded).to.equal(undefined);
    });

    it('accepts what helm template renders, applied with kubectl', async function () {
      const { kubeConfig, kubeconfigPath } = server!;
      const rendered = await run(helmPath(), [
        'template',
        'applied',
        chartDir,
        '--set',
        'greeting=from-kubectl',
      ]);
      const applied = await run(
        kubectlPath(),
        ['--kubeconfig', kubeconfigPath, 'apply', '--namespace', 'default', '-f', '-'],
        rendered.stdout,
      );
      expect(applied.stdout).to.contain('configmap/applied-greeting created');
      const configMap = await kubeConfig
        .makeApiClient(CoreV1Api)
        .readNamespacedConfigMap({ namespace: 'default', name: 'applied-greeting' });
      expect(configMap.data).to.deep.equal({ greeting: 'from-kubectl' });

      const version = await run(kubectlPath(), ['--kubeconfig', kubeconfigPath, 'version', '--output=json']);
      const versions = JSON.parse(version.stdout) as {
        clientVersion: { gitVersion: string };
        serverVersion: { gitVersion: string };
      };
      expect(versions.clientVersion.gitVersion).to.equal(pinnedVersions().KUBERNETES_VERSION);
      expect(versions.serverVersion.gitVersion).to.equal(pinnedVersions().KUBERNETES_VERSION);
    });
  });

  describe('helm and grpcurl', function () {
    it('helm lint accepts the minimal chart', async function () {
      const { stdout } = await run(helmPath(), ['lint', '--strict', chartDir]);
      expect(stdout).to.contain('1 chart(s) linted, 0 chart(s) failed');
    });

    it('helm template renders the minimal chart with the given values', async function () {
      const { stdout } = await run(helmPath(), ['template', 'rel', chartDir, '--set', 'greeting=hi']);
      expect(stdout).to.contain('kind: ConfigMap');
      expect(stdout).to.contain("name: 'rel-greeting'");
      expect(stdout).to.contain("greeting: 'hi'");
    });

    it('helm and grpcurl report their pinned versions', async function () {
      const pins = pinnedVersions();
      const helm = await run(helmPath(), ['version', '--short']);
      expect(helm.stdout.trim()).to.equal(pins.HELM_VERSION);
      // grpcurl prints its version on stderr.
      const grpcurl = await run(grpcurlPath(), ['--version']);
      expect((grpcurl.stdout + grpcurl.stderr).trim()).to.equal(`grpcurl ${pins.GRPCURL_VERSION}`);
    });
  });

  describe('two API servers', function () {
    it('run side by side, apart, and leave no process behind after stop', async function () {
      this.timeout(300_000);
      const started = await Promise.allSettled([startKubeApiServer(), startKubeApiServer()]);
      const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      try {
        for (const result of started) if (result.status === 'rejected') throw result.reason;
        const [first, second] = servers as [KubeApiServer, KubeApiServer];
        expect(first.server).not.to.equal(second.server);
        expect(first.dir).not.to.equal(second.dir);

        await first.kubeConfig
          .makeApiClient(CoreV1Api)
          .createNamespace({ body: { metadata: { name: 'only-in-first' } } });
        await first.kubeConfig.makeApiClient(CoreV1Api).readNamespace({ name: 'only-in-first' });
        const missing = await second.kubeConfig
          .makeApiClient(CoreV1Api)
          .readNamespace({ name: 'only-in-first' })
          .then(
            () => undefined,
            (error: unknown) => error,
          );
        expect(missing).to.be.instanceOf(ApiException);
        expect((missing as ApiException<unknown>).code).to.equal(404);
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
      for (const server of servers) {
        expect(processesMentioning(server.dir)).to.deep.equal([]);
        expect(existsSync(server.dir)).to.equal(false);
      }
    });
  });
});
