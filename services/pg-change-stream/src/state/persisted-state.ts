import type { ChangeBuffer, Position } from '@kasho/common';
import type { BootstrapStateName, PersistedState } from './bootstrap-state.js';

/** The change-stream's state as fields of the Redis state hash. */
export interface StoredState extends PersistedState {
  /** Commit LSN of the last transaction fully written to the buffer. */
  lastCommitLsn: bigint | undefined;
  acknowledged: Position | undefined;
}

const STATES: readonly BootstrapStateName[] = ['WAITING', 'ACCUMULATING', 'STREAMING'];

export function decodeStoredState(fields: Record<string, string>): StoredState | undefined {
  const state = fields.state as BootstrapStateName | undefined;
  if (!state || !STATES.includes(state)) return undefined;
  const big = (value: string | undefined) => (value ? BigInt(value) : undefined);
  return {
    state,
    epoch: fields.epoch ?? '',
    startLsn: big(fields.startLsn),
    lastCommitLsn: big(fields.lastCommitLsn),
    acknowledged:
      fields.ackLsn !== undefined && fields.ackSeq !== undefined
        ? { lsn: BigInt(fields.ackLsn), seq: BigInt(fields.ackSeq) }
        : undefined,
  };
}

export function encodePersistedState(state: PersistedState): Record<string, string> {
  return { state: state.state, epoch: state.epoch, startLsn: state.startLsn?.toString() ?? '' };
}

export async function loadStoredState(buffer: ChangeBuffer): Promise<StoredState | undefined> {
  return decodeStoredState(await buffer.readState());
}
