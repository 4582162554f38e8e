/**
 * A real Kubernetes API server for tests (etcd + kube-apiserver, started by hack/k8s/apiserver.sh), and the paths of
 * the other pinned tools (helm, kubectl, grpcurl). Versions come from hack/versions.env and the binaries from the
 * cache hack/k8s/build.sh fills; hack/k8s/bin-path.sh is asked where they are so that the layout lives in one place.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ApiextensionsV1Api, KubeConfig } from '@kubernetes/client-node';
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import { KashoError } from '@kasho/common/errors';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const k8sScripts = path.join(repoRoot, 'hack', 'k8s');
const buildHint = 'Run hack/k8s/build.sh (about 9 minutes the first time, then cached).';

export type KubeTool = 'kube-apiserver' | 'kubectl' | 'etcd' | 'helm' | 'grpcurl';

/** The pins of hack/versions.env (KUBERNETES_VERSION, ETCD_VERSION, HELM_VERSION, GRPCURL_VERSION, ...). */
export function pinnedVersions(): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const line of readFileSync(path.join(repoRoot, 'hack', 'versions.env'), 'utf8').split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(\S+)$/.exec(line.trim());
    if (match?.[1] && match[2]) versions[match[1]] = match[2];
  }
  return versions;
}

const toolFiles = new Map<KubeTool, string>();

/** The pinned build of a tool. Throws, saying how to build it, when it is not built yet. */
export function kubeToolPath(tool: KubeTool): string {
  let file = toolFiles.get(tool);
  if (file === undefined) {
    const dir = execFileSync('bash', [path.join(k8sScripts, 'bin-path.sh'), tool], {
      encoding: 'utf8',
    }).trim();
    file = path.join(dir, tool);
    toolFiles.set(tool, file);
  }
  if (!existsSync(file)) {
    throw new KashoError(`${file} is missing: the pinned Kubernetes test tools are not built.`, buildHint);
  }
  return file;
}

export const helmPath = (): string => kubeToolPath('helm');
export const kubectlPath = (): string => kubeToolPath('kubectl');
export const grpcurlPath = (): string => kubeToolPath('grpcurl');

/**
 * Builds the pinned tools that are missing (hack/k8s/build.sh): about 9 minutes cold, a few milliseconds when
 * everything is cached. Its progress goes to stderr so that it does not mix with the test reporter's output.
 */
export function buildKubeTools(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(k8sScripts, 'build.sh')], { stdio: ['ignore', 2, 2] });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new KashoError(
            `hack/k8s/build.sh failed (${signal ?? `exit ${code}`})`,
            'Its output above says why.',
          ),
        );
    });
  });
}

export interface KubeApiServer {
  /** Admin credentials (a client certificate in group system:masters). */
  kubeConfig: KubeConfig;
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Holds the certificates, the etcd data and the logs (etcd.log, kube-apiserver.log); stop() deletes it. */
  dir: string;
  /** Stops kube-apiserver and etcd and waits until both have exited. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartKubeApiServerOptions {
  /** How long to wait for /readyz; default 120 s (a start takes about 3 s on an idle machine). */
  readyTimeoutMs?: number;
}

/**
 * Starts etcd and kube-apiserver on free loopback ports. Nothing runs Pods (no scheduler, controller manager or
 * kubelet). The servers run under `apiserver.sh run`, which stops them when its stdin closes: stop() closes it, and
 * so does the end of the test process however it ends, so no server outlives the tests.
 */
export async function startKubeApiServer(options: StartKubeApiServerOptions = {}): Promise<KubeApiServer> {
  kubeToolPath('etcd');
  kubeToolPath('kube-apiserver');
  const dir = await mkdtemp(path.join(tmpdir(), 'kasho-apiserver-'));
  const child = spawn('bash', [path.join(k8sScripts, 'apiserver.sh'), 'run', dir, '--rm'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8000);
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));

  let kubeconfigPath: string;
  try {
    kubeconfigPath = await new Promise<string>((resolve, reject) => {
      const timeoutMs = options.readyTimeoutMs ?? 120_000;
      const timer = setTimeout(() => {
        child.kill('SIGTERM');
        reject(
          new KashoError(
            `kube-apiserver was not ready within ${timeoutMs / 1000}s:\n${stderr}`,
            'Its messages above say why; on a busy machine pass a larger readyTimeoutMs.',
          ),
        );
      }, timeoutMs);
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.startsWith('ready ')) {
          clearTimeout(timer);
          resolve(line.slice('ready '.length));
        }
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new KashoError(
            `hack/k8s/apiserver.sh exited (${signal ?? `exit ${code}`}) before kube-apiserver was ready:\n${stderr}`,
            'Its messages above say why.',
          ),
        );
      });
    });
  } catch (error) {
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  let stopping: Promise<void> | undefined;
  return {
    kubeConfig,
    kubeconfigPath,
    server: kubeConfig.getCurrentCluster()?.server ?? '',
    dir,
    stop() {
      stopping ??= (async () => {
        child.stdin.end();
        // apiserver.sh gives each server 20 s to stop before it kills it; this only guards against a hung script,
        // whose death also kills the servers (parent-death signal).
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        await exited;
        clearTimeout(timer);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/**
 * Creates a CustomResourceDefinition and waits until it is Established. A watch opened right after that can still
 * get 429 "storage is (re)initializing" for about a second: watch code must retry on 429.
 */
export async function createCrdAndWait(
  kubeConfig: KubeConfig,
  crd: V1CustomResourceDefinition,
  timeoutMs = 30_000,
): Promise<V1CustomResourceDefinition> {
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const name = crd.metadata?.name;
  if (!name)
    throw new KashoError('The CustomResourceDefinition has no metadata.name.', 'Set it to <plural>.<group>.');
  await api.createCustomResourceDefinition({ body: crd });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await api.readCustomResourceDefinition({ name });
    const established = current.status?.conditions?.some(
      (c) => c.type === 'Established' && c.status === 'True',
    );
    if (established) return current;
    if (Date.now() > deadline) {
      throw new KashoError(
        `CustomResourceDefinition ${name} was not Established within ${timeoutMs / 1000}s.`,
        'Its status conditions say why: kubectl get crd -o yaml.',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
