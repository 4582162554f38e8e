import { KubeConfig } from '@kubernetes/client-node';
import { createLogger, runMain, startHealthServer } from '@kasho/common';
import { Controller } from './controller/controller.js';
import { describeApiError, statusCode } from './controller/kube.js';
import { LeaderElector } from './controller/leader-election.js';
import { OperatorMetrics } from './controller/metrics.js';
import { HELP, loadConfig } from './config.js';

runMain(HELP, async () => {
  const config = loadConfig(process.env);
  const logger = createLogger('kasho-operator');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const metrics = new OperatorMetrics();
  const controller = new Controller({
    kubeConfig,
    namespaces: config.namespaces,
    defaultImage: config.defaultImage,
    pollIntervalMs: config.pollIntervalMs,
    identity: config.identity,
    logger,
    metrics,
    workers: config.workers,
  });
  const elector = config.leaderElect
    ? new LeaderElector(
        kubeConfig,
        { namespace: config.leaseNamespace, name: config.leaseName, identity: config.identity },
        logger,
      )
    : undefined;
  const health = await startHealthServer(config.httpPort, metrics.registry, {
    live: () => true,
    // A standby replica is ready: it is doing its job, which is to wait.
    ready: async () =>
      elector && !elector.isLeader
        ? { ready: true }
        : controller.ready
          ? { ready: true }
          : { ready: false, reason: 'informers are starting' },
  });
  logger.info(`kasho-operator ${config.identity}: health and metrics on port ${config.httpPort}`);

  let stopping = false;
  const shutdown = async (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: shutting down`);
    await controller.stop();
    await elector?.stop();
    health.close();
    process.exit(exitCode);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown(signal));

  const startController = async () => {
    try {
      await controller.start();
    } catch (error) {
      const text =
        statusCode(error) === 404
          ? 'the KashoPipeline CustomResourceDefinition is not installed; install it with: kubectl apply --server-side -f crds/kasho.io_kashopipelines.yaml'
          : describeApiError(error);
      logger.error(`Could not start watching: ${text}`);
      void shutdown('start failed', 1);
    }
  };

  if (elector) {
    elector.start({
      onStartedLeading: async () => {
        metrics.leader.set(1);
        await startController();
      },
      onStoppedLeading: () => {
        metrics.leader.set(0);
        // Another replica may already act: stop at once and let Kubernetes restart this one as a candidate.
        if (!stopping) void shutdown('leadership lost', 1);
      },
    });
  } else {
    await startController();
  }
});
