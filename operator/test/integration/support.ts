/**
 * Test helpers for the operator against the real API server rig: the CRD installed from the committed file, a
 * namespace per test, and the kubelet's part played by hand (a Job's terminal status written by the test).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubeConfig,
  type V1Job,
} from '@kubernetes/client-node';
import { createLogger } from '@kasho/common';
import { kubectlPath, startKubeApiServer, type KubeApiServer } from '../../../hack/testing/kube-apiserver.js';
import { eventually } from '../../../hack/testing/services.js';
import { API_GROUP, API_VERSION, PLURAL, type PipelineStatus } from '../../src/api/schema.js';
import type { KashoPipelineObject } from '../../src/api/pipeline.js';

export const crdFile = fileURLToPath(new URL('../../../crds/kasho.io_kashopipelines.yaml', import.meta.url));

export { eventually };

/** A logger that stays quiet unless the test run asks for it (LOG_LEVEL=debug). */
export const testLogger = createLogger('kasho-operator-test', {
  ...process.env,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
});

export interface Rig {
  server: KubeApiServer;
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
}

/**
 * Starts an API server and installs the committed CRD as a user does, with kubectl (the client library's typed
 * models would drop the x-kubernetes-* extensions of a CRD given as plain YAML).
 */
export async function startRig(): Promise<Rig> {
  const server = await startKubeApiServer();
  const kc = server.kubeConfig;
  const rig: Rig = {
    server,
    kubeConfig: kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
  try {
    for (const args of [
      ['apply', '--server-side', '-f', crdFile],
      ['wait', '--for=condition=Established', '--timeout=60s', 'crd/kashopipelines.kasho.io'],
    ]) {
      const result = await kubectl(rig, args);
      if (result.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed:\n${result.stderr}`);
    }
  } catch (error) {
    await server.stop();
    throw error;
  }
  return rig;
}

let namespaces = 0;
export async function createNamespace(rig: Rig, prefix = 'test'): Promise<string> {
  const name = `${prefix}-${++namespaces}-${Math.random().toString(36).slice(2, 7)}`;
  await rig.core.createNamespace({ body: { metadata: { name } } });
  return name;
}

export async function createSecret(rig: Rig, namespace: string, name: string, data: Record<string, string>) {
  await rig.core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: data } });
}

export async function createPipeline(
  rig: Rig,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
) {
  return (await rig.custom.createNamespacedCustomObject({
    group: API_GROUP,
    version: API_VERSION,
    namespace,
    plural: PLURAL,
    body: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'KashoPipeline', metadata: { name }, spec },
  })) as KashoPipelineObject;
}

export async function getPipeline(rig: Rig, namespace: string, name: string) {
  return (await rig.custom.getNamespacedCustomObject({
    group: API_GROUP,
    version: API_VERSION,
    namespace,
    plural: PLURAL,
    name,
  })) as KashoPipelineObject & { spec: Record<string, unknown>; status?: PipelineStatus };
}

export async function pipelineExists(rig: Rig, namespace: string, name: string): Promise<boolean> {
  return getPipeline(rig, namespace, name).then(
    () => true,
    (error: { code?: number }) => {
      if (error.code === 404) return false;
      throw error;
    },
  );
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export async function patchPipeline(
  rig: Rig,
  namespace: string,
  name: string,
  body: Record<string, unknown>,
) {
  return rig.custom.patchNamespacedCustomObject(
    { group: API_GROUP, version: API_VERSION, namespace, plural: PLURAL, name, body },
    mergePatch,
  );
}

export async function deletePipeline(rig: Rig, namespace: string, name: string) {
  await rig.custom.deleteNamespacedCustomObject({
    group: API_GROUP,
    version: API_VERSION,
    namespace,
    plural: PLURAL,
    name,
  });
}

/** Waits until the pipeline's status satisfies `check`; the failure message shows the last status seen. */
export async function waitForStatus(
  rig: Rig,
  namespace: string,
  name: string,
  what: string,
  check: (status: PipelineStatus) => boolean,
  timeoutMs = 30_000,
): Promise<PipelineStatus> {
  let last: PipelineStatus | undefined;
  try {
    return await eventually(
      what,
      async () => {
        last = (await getPipeline(rig, namespace, name)).status ?? {};
        return check(last) ? last : undefined;
      },
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}\nlast status: ${JSON.stringify(last, null, 2)}`, {
      cause: error,
    });
  }
}

export async function waitForJob(
  rig: Rig,
  namespace: string,
  name: string,
  timeoutMs = 30_000,
): Promise<V1Job> {
  return eventually(
    `Job ${name}`,
    async () => rig.batch.readNamespacedJob({ namespace, name }).catch(() => undefined),
    timeoutMs,
  );
}

/**
 * Plays the Job controller's part: writes the terminal conditions a finished Job gets (the rig runs no pods).
 * Kubernetes requires the interim SuccessCriteriaMet / FailureTarget condition next to Complete / Failed.
 */
export async function finishJob(rig: Rig, namespace: string, name: string, outcome: 'Complete' | 'Failed') {
  const now = new Date();
  const started = new Date(now.getTime() - 2000);
  const condition = (type: string, reason: string, message: string) => ({
    type,
    status: 'True',
    reason,
    message,
    lastProbeTime: now,
    lastTransitionTime: now,
  });
  const status =
    outcome === 'Complete'
      ? {
          startTime: started,
          completionTime: now,
          succeeded: 1,
          conditions: [
            condition(
              'SuccessCriteriaMet',
              'CompletionsReached',
              'Reached expected number of succeeded pods',
            ),
            condition('Complete', 'CompletionsReached', 'Reached expected number of succeeded pods'),
          ],
        }
      : {
          startTime: started,
          failed: 3,
          conditions: [
            condition('FailureTarget', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit'),
            condition('Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit'),
          ],
        };
  const job = await rig.batch.readNamespacedJob({ namespace, name });
  await rig.batch.replaceNamespacedJobStatus({ namespace, name, body: { ...job, status } });
}

export async function events(rig: Rig, namespace: string, name: string): Promise<CoreV1Event[]> {
  const list = await rig.core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.kind=KashoPipeline,involvedObject.name=${name}`,
  });
  return list.items;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(
  file: string,
  args: string[],
  env: Record<string, string> = {},
  input = '',
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input);
  });
}

export function kubectl(rig: Rig, args: string[], input = ''): Promise<RunResult> {
  return run(kubectlPath(), ['--kubeconfig', rig.server.kubeconfigPath, ...args], {}, input);
}
