import { hostname } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { parseConfig, portEnv } from '@kasho/common/config';

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** "10s", "500ms", "2m" or a number of seconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match?.[1]) return undefined;
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  const ms = unit === 'ms' ? value : unit === 'm' ? value * 60_000 : value * 1000;
  return ms > 0 ? ms : undefined;
}

const duration = (name: string, fallback: string) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      const ms = parseDuration(value === undefined || value.trim() === '' ? fallback : value);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a duration such as 10s, 500ms or 2m` });
        return z.NEVER;
      }
      return ms;
    });

const flag = (name: string, fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return fallback;
      if (/^(true|1|yes)$/i.test(value.trim())) return true;
      if (/^(false|0|no)$/i.test(value.trim())) return false;
      ctx.addIssue({ code: 'custom', message: `${name} must be true or false` });
      return z.NEVER;
    });

const schema = z.object({
  WATCH_NAMESPACE: z
    .string()
    .optional()
    .transform((value) =>
      (value ?? '')
        .split(',')
        .map((ns) => ns.trim())
        .filter((ns) => ns !== ''),
    ),
  HTTP_PORT: portEnv('HTTP_PORT', 8081),
  POLL_INTERVAL: duration('POLL_INTERVAL', '10s'),
  LEADER_ELECT: flag('LEADER_ELECT', true),
  LEADER_ELECTION_NAMESPACE: z.string().optional(),
  LEADER_ELECTION_ID: z.string().optional(),
  POD_NAMESPACE: z.string().optional(),
  POD_NAME: z.string().optional(),
  DEFAULT_IMAGE: z.string().optional(),
  WORKERS: z
    .string()
    .optional()
    .transform((value, ctx) => {
      const workers = value === undefined || value.trim() === '' ? 2 : Number(value);
      if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
        ctx.addIssue({ code: 'custom', message: 'WORKERS must be a whole number between 1 and 64' });
        return z.NEVER;
      }
      return workers;
    }),
});

export interface OperatorConfig {
  /** Empty: all namespaces. */
  namespaces: string[];
  httpPort: number;
  pollIntervalMs: number;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  defaultImage: string;
  workers: number;
}

function inClusterNamespace(): string | undefined {
  return existsSync(SERVICE_ACCOUNT_NAMESPACE)
    ? readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim()
    : undefined;
}

export function loadConfig(env: NodeJS.ProcessEnv): OperatorConfig {
  const parsed = parseConfig(schema, env);
  return {
    namespaces: parsed.WATCH_NAMESPACE,
    httpPort: parsed.HTTP_PORT,
    pollIntervalMs: parsed.POLL_INTERVAL,
    leaderElect: parsed.LEADER_ELECT,
    leaseNamespace:
      parsed.LEADER_ELECTION_NAMESPACE ||
      parsed.POD_NAMESPACE ||
      inClusterNamespace() ||
      parsed.WATCH_NAMESPACE[0] ||
      'default',
    leaseName: parsed.LEADER_ELECTION_ID || 'kasho-operator',
    identity: parsed.POD_NAME || `${hostname()}-${randomBytes(4).toString('hex')}`,
    defaultImage: parsed.DEFAULT_IMAGE || 'kasho:latest',
    workers: parsed.WORKERS,
  };
}

export const HELP = `kasho-operator: runs KashoPipeline resources (kasho.io/v1alpha1) on Kubernetes.

Credentials: in-cluster (the pod's ServiceAccount) or KUBECONFIG.

Environment:
  WATCH_NAMESPACE            comma-separated namespaces to watch (default: all)
  HTTP_PORT                  /healthz, /readyz and /metrics (default 8081)
  POLL_INTERVAL              how often each pipeline's status is refreshed (default 10s)
  LEADER_ELECT               true (default) or false: elect one active replica with a Lease
  LEADER_ELECTION_NAMESPACE  namespace of the Lease (default: POD_NAMESPACE, the pod's namespace, or default)
  LEADER_ELECTION_ID         name of the Lease (default kasho-operator)
  POD_NAME                   this replica's identity in the Lease and in events (default: host name)
  DEFAULT_IMAGE              kasho image for pipelines without spec.image (default kasho:latest)
  WORKERS                    pipelines reconciled in parallel (default 2)
  LOG_LEVEL                  error, warn, info or debug (default info)
  LOG_FORMAT                 text or json (default text)
`;
