import { parseArgs } from 'node:util';
import {
  CompleteBootstrapResponse,
  GetStatusResponse,
  ReleaseSnapshotResponse,
  ResetBootstrapResponse,
  StartBootstrapResponse,
  ConfigError,
  runMain,
  ChangeStreamApi,
} from '@kasho/common';
import type { ServiceError } from '@grpc/grpc-js';

const HELP = `kasho-ctl: calls pg-change-stream's gRPC API (what the guide does with grpcurl, without needing it).

Usage:
  kasho-ctl [--address HOST:PORT] [--wait SECONDS] COMMAND

Commands:
  status               GetStatus, as JSON
  start-bootstrap      StartBootstrap: creates the slot and exports its snapshot
  release-snapshot     ReleaseSnapshot: ends the exported snapshot once the dump has it
  complete-bootstrap   CompleteBootstrap: ACCUMULATING -> STREAMING
  reset-bootstrap      ResetBootstrap: drops slot and buffer, back to WAITING

Options:
  --address HOST:PORT  pg-change-stream (default: CHANGE_STREAM_SERVICE, else localhost:8080)
  --wait SECONDS       retry while pg-change-stream is unreachable, up to this long (default 0)
`;

const commands: Record<string, (api: ChangeStreamApi) => Promise<unknown>> = {
  status: async (api) => GetStatusResponse.toJSON(await api.getStatus()),
  'start-bootstrap': async (api) => StartBootstrapResponse.toJSON(await api.startBootstrap()),
  'release-snapshot': async (api) => ReleaseSnapshotResponse.toJSON(await api.releaseSnapshot()),
  'complete-bootstrap': async (api) => CompleteBootstrapResponse.toJSON(await api.completeBootstrap()),
  'reset-bootstrap': async (api) => ResetBootstrapResponse.toJSON(await api.resetBootstrap()),
};

runMain(HELP, async (argv) => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { address: { type: 'string' }, wait: { type: 'string' } },
    allowPositionals: true,
  });
  const command = positionals[0];
  const run = command ? commands[command] : undefined;
  if (!command || !run) {
    throw new ConfigError([
      `unknown or missing command${command ? ` '${command}'` : ''}; run kasho-ctl --help`,
    ]);
  }
  const address = values.address ?? process.env.CHANGE_STREAM_SERVICE ?? 'localhost:8080';
  const deadline = Date.now() + Number(values.wait ?? '0') * 1000;
  const api = new ChangeStreamApi(address);
  try {
    for (;;) {
      try {
        const result = await run(api);
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      } catch (error) {
        const grpcError = error as ServiceError;
        if (grpcError.code === 14 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          continue;
        }
        throw new ConfigError([`${command} failed: ${grpcError.details ?? grpcError.message}`]);
      }
    }
  } finally {
    api.close();
  }
});
