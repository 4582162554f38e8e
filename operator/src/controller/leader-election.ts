/**
 * Leader election on a coordination.k8s.io Lease, the way client-go does it: a candidate takes the Lease when it is
 * free or when the holder has not renewed it for leaseDuration as measured on the candidate's own clock (so clocks
 * need not agree), renews every retryPeriod, and gives up leadership if it cannot renew within renewDeadline.
 * Every write carries the resourceVersion it read, so two candidates never both win.
 */
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '@kasho/common/logger';
import { describeApiError, statusCode } from './kube.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface LeaderCallbacks {
  onStartedLeading(): void | Promise<void>;
  /** Leadership is lost (could not renew in time) or released: stop acting at once. */
  onStoppedLeading(): void;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private observed: { holder: string; renewTime: string; at: number } | undefined;
  private readonly stopping = new AbortController();
  private leading = false;
  private running: Promise<void> | undefined;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: LeaderElectionOptions,
    private readonly logger: Logger,
  ) {
    this.api = kubeConfig.makeApiClient(CoordinationV1Api);
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Campaigns until elected, then renews until stop() or until leadership is lost. */
  start(callbacks: LeaderCallbacks): void {
    this.running = this.run(callbacks);
  }

  private async run(callbacks: LeaderCallbacks): Promise<void> {
    const signal = this.stopping.signal;
    const lease = `${this.options.namespace}/${this.options.name}`;
    this.logger.info(`Waiting to lead (Lease ${lease}, identity ${this.options.identity})`);
    while (!signal.aborted && !(await this.tryAcquireOrRenew())) await sleep(this.retryPeriodMs, signal);
    if (signal.aborted) return;
    this.leading = true;
    this.logger.info(`Leading (Lease ${lease})`);
    // Starting to act may take longer than the Lease lasts: keep renewing meanwhile, or another replica would
    // take over while this one starts acting.
    const startup = Promise.resolve().then(() => callbacks.onStartedLeading());
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.retryPeriodMs, signal);
      if (signal.aborted) break;
      if (await this.tryAcquireOrRenew()) {
        lastRenew = Date.now();
      } else if (Date.now() - lastRenew > this.renewDeadlineMs) {
        this.leading = false;
        this.logger.error(
          `Lost the Lease ${lease}: it could not be renewed within ${this.renewDeadlineMs} ms`,
        );
        callbacks.onStoppedLeading();
        return;
      }
    }
    if (this.leading) {
      this.leading = false;
      callbacks.onStoppedLeading();
      await this.release();
    }
    await startup;
  }

  /** Stops campaigning; a leader releases the Lease so that another candidate takes over at once. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  private leaseBody(existing: V1Lease | undefined, now: Date): V1Lease {
    const sameHolder = existing?.spec?.holderIdentity === this.options.identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.options.name,
        namespace: this.options.namespace,
        ...(existing?.metadata?.resourceVersion
          ? { resourceVersion: existing.metadata.resourceVersion }
          : {}),
      },
      spec: {
        holderIdentity: this.options.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        acquireTime:
          sameHolder && existing?.spec?.acquireTime ? existing.spec.acquireTime : new V1MicroTime(now),
        renewTime: new V1MicroTime(now),
        leaseTransitions: (existing?.spec?.leaseTransitions ?? 0) + (existing && !sameHolder ? 1 : 0),
      },
    };
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new Date();
    try {
      let existing: V1Lease | undefined;
      try {
        existing = await this.api.readNamespacedLease({ namespace, name });
      } catch (error) {
        if (statusCode(error) !== 404) throw error;
      }
      if (!existing) {
        await this.api.createNamespacedLease({ namespace, body: this.leaseBody(undefined, now) });
        return true;
      }
      const holder = existing.spec?.holderIdentity ?? '';
      const renewTime = existing.spec?.renewTime ? new Date(existing.spec.renewTime).toISOString() : '';
      if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
        this.observed = { holder, renewTime, at: Date.now() };
      }
      const durationMs = (existing.spec?.leaseDurationSeconds ?? this.leaseDurationMs / 1000) * 1000;
      const heldByOther = holder !== '' && holder !== identity;
      if (heldByOther && this.observed.at + durationMs > Date.now()) return false;
      await this.api.replaceNamespacedLease({ namespace, name, body: this.leaseBody(existing, now) });
      return true;
    } catch (error) {
      const code = statusCode(error);
      if (code !== 409) this.logger.warn(`Lease ${namespace}/${name}: ${describeApiError(error)}`);
      return false;
    }
  }

  private async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    try {
      const existing = await this.api.readNamespacedLease({ namespace, name });
      if (existing.spec?.holderIdentity !== identity) return;
      const body = this.leaseBody(existing, new Date());
      body.spec = { ...body.spec, holderIdentity: '', leaseDurationSeconds: 1 };
      await this.api.replaceNamespacedLease({ namespace, name, body });
      this.logger.info(`Released the Lease ${namespace}/${name}`);
    } catch (error) {
      this.logger.warn(`Could not release the Lease ${namespace}/${name}: ${describeApiError(error)}`);
    }
  }
}
