import {
  ChangeBuffer,
  connectRedis,
  createLogger,
  redactUrl,
  runMain,
  startHealthServer,
} from '@kasho/common';
import { ChangeStream } from './change-stream.js';
import { HELP, loadConfig } from './config.js';
import { ChangeStreamGrpcServer } from './grpc/service.js';
import { createMetrics } from './metrics.js';
import { SourceDatabase } from './source/source-database.js';

runMain(HELP, async () => {
  const config = loadConfig(process.env);
  const logger = createLogger('pg-change-stream');
  logger.info(
    `Source ${redactUrl(config.primaryDatabaseUrl)}, buffer ${redactUrl(config.kvUrl)}, slot ${config.slotName}, publication ${config.publicationName}`,
  );
  const redis = connectRedis(config.kvUrl, logger);
  const source = new SourceDatabase(config.primaryDatabaseUrl);
  const core = new ChangeStream(config, new ChangeBuffer(redis, config.slotName), source, logger);
  const grpcServer = new ChangeStreamGrpcServer(core, logger);
  let started = false;
  const health = await startHealthServer(config.httpPort, createMetrics(core, grpcServer), {
    live: () => true,
    ready: async () => {
      if (!started) return { ready: false, reason: 'starting' };
      if (redis.status !== 'ready') return { ready: false, reason: 'Redis is unreachable' };
      if (core.state.state !== 'WAITING' && !core.captureStats?.connected) {
        return { ready: false, reason: 'replication connection is down' };
      }
      return { ready: true };
    },
  });
  await startWithRetry(() => core.start(), logger);
  const port = await grpcServer.listen(config.grpcPort);
  started = true;
  logger.info(`gRPC on port ${port}, health and metrics on port ${config.httpPort}`);

  const shutdown = async (signal: string) => {
    logger.info(`${signal}: shutting down`);
    await grpcServer.close();
    await core.stop();
    await source.end();
    redis.disconnect();
    health.close();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown(signal));
});

/** The source may not be up yet (compose, Kubernetes): retry connection errors with backoff, fail on the rest. */
async function startWithRetry(
  start: () => Promise<void>,
  logger: ReturnType<typeof createLogger>,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await start();
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      const transient =
        code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === '57P03';
      if (!transient) throw error;
      if (attempt === 0) logger.warn(`The source database is unreachable (${code}); retrying with backoff`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** attempt, 10_000)));
    }
  }
}
