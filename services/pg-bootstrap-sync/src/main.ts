import type { Redis } from 'ioredis';
import {
  KashoError,
  bufferKeys,
  connectRedis,
  createLogger,
  redactUrl,
  runMain,
  type Logger,
} from '@kasho/common';
import { BootstrapWriter, changeStreamStatus } from './bootstrap-writer.js';
import { HELP, loadConfig, type BootstrapSyncConfig } from './config.js';
import { loadDirect } from './direct.js';
import { loadDumpFile } from './dump-file.js';
import type { DumpInterpreter } from './dump-interpreter.js';
import { SnapshotEmitter } from './dump-reader.js';
import { EventBuilder } from './event-builder.js';
import { Progress, formatBytes } from './progress.js';

/** A pseudo-transaction closes at this many bytes of values even before --batch-size rows. */
const BATCH_BYTES = 32 * 1024 * 1024;
const REDIS_CONNECT_TIMEOUT_MS = 30_000;

async function reachRedis(redis: Redis, url: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), REDIS_CONNECT_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    throw new KashoError(
      `Cannot reach Redis at ${redactUrl(url)}: ${(error as Error).message}`,
      'Check --redis-url (or KV_URL).',
    );
  } finally {
    clearTimeout(timer);
  }
}

async function resolveSnapshot(config: BootstrapSyncConfig & { mode: 'direct' }, logger: Logger) {
  if (config.snapshot) return config.snapshot;
  const status = await changeStreamStatus(config.changeStream!);
  if (!status.snapshotHeld || !status.snapshotName) {
    throw new KashoError(
      `pg-change-stream at ${config.changeStream} holds no exported snapshot`,
      'Pass --snapshot with the name StartBootstrap returned, or reset the bootstrap and start it again.',
    );
  }
  logger.info(`Using the snapshot ${status.snapshotName} that pg-change-stream holds`);
  return status.snapshotName;
}

async function run(config: BootstrapSyncConfig, logger: Logger, redis: Redis): Promise<void> {
  await reachRedis(redis, config.redisUrl);
  const writer = await BootstrapWriter.open(redis, {
    slotName: config.slotName,
    replace: config.replace,
    changeStream: config.changeStream,
    logger,
  });
  const snapshot = config.mode === 'direct' ? await resolveSnapshot(config, logger) : undefined;
  const builder = new EventBuilder({ maxChanges: config.batchSize, maxBytes: BATCH_BYTES });
  const progress = new Progress((line) => logger.info(line));
  const emitter = new SnapshotEmitter(builder, writer, progress);
  progress.start();
  try {
    let interpreter: DumpInterpreter;
    if (config.mode === 'dump-file') {
      logger.info(`Loading ${config.dumpFile} into ${bufferKeys(config.slotName).bootstrap}`);
      interpreter = await loadDumpFile(config.dumpFile, emitter, logger);
    } else {
      logger.info(`Reading the source under snapshot ${snapshot!} with ${config.jobs} connections`);
      interpreter = await loadDirect(
        {
          sourceUrl: config.sourceUrl,
          snapshot: snapshot!,
          jobs: config.jobs,
          pgDump: config.pgDump,
          logger,
        },
        emitter,
      );
    }
    await emitter.finish();
    await writer.finish();
    progress.stop();
    const skipped = interpreter.describeSkipped();
    logger.info(
      `Done: ${progress.describe()}; ${writer.events} events in ${bufferKeys(config.slotName).bootstrap} ` +
        `(positions 0/1 to 0/${builder.lastSeq}); peak RSS ${formatBytes(process.resourceUsage().maxRSS * 1024)}` +
        (skipped ? `; left out: ${skipped}` : ''),
    );
  } finally {
    progress.stop();
  }
}

runMain(HELP, async (argv) => {
  const config = loadConfig(argv, process.env);
  const logger = createLogger('pg-bootstrap-sync');
  const redis = connectRedis(config.redisUrl, logger);
  try {
    await run(config, logger, redis);
  } finally {
    redis.disconnect();
  }
});
