import { createLogger, redactUrl, runMain, startHealthServer } from '@kasho/common';
import { HELP, loadConfig } from './config.js';
import { TranslicatorMetrics } from './metrics.js';
import { createTransformer, loadTransformsFile } from './transforms/index.js';
import { Translicator } from './translicator.js';

runMain(HELP, async () => {
  const config = loadConfig(process.env);
  const logger = createLogger('pg-translicator');
  const transforms = loadTransformsFile(config.transformsFile);
  const transformer = createTransformer(transforms, { secret: config.transformSecret, logger });
  logger.info(
    `Target ${redactUrl(config.replicaDatabaseUrl)}, change-stream ${config.changeStreamService}, transforms ${config.transformsFile}`,
  );
  const metrics: TranslicatorMetrics = new TranslicatorMetrics(async (): Promise<number | undefined> =>
    running.lagBytes(),
  );
  const running: Translicator = new Translicator({
    changeStreamService: config.changeStreamService,
    replicaDatabaseUrl: config.replicaDatabaseUrl,
    transformer,
    logger,
    metrics,
  });
  const health = await startHealthServer(config.httpPort, metrics.registry, {
    live: () => true,
    ready: async () => (running.ready ? { ready: true } : { ready: false, reason: 'not streaming' }),
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      logger.info(`${signal}: shutting down`);
      void running.stop().finally(() => health.close());
    });
  }
  try {
    await running.run();
  } catch (error) {
    metrics.errors.inc({ kind: 'fatal' });
    health.close();
    throw error;
  }
  health.close();
});
