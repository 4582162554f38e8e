import type pg from 'pg';
import type { Position } from '@kasho/common';

/**
 * What the translicator keeps in the target itself, in schema `kasho`: the position applied so far. It is written
 * in the same transaction as the changes it covers, so the target and its position can never disagree.
 */
export interface AppliedState {
  epoch: string;
  position: Position;
  /** Commit LSN of the last applied transaction (see gap detection in proto/kasho/change_stream.proto). */
  chainLsn: bigint;
}

export const POSITION_TABLE = 'kasho.applied_position';

/** Creates the schema and table when missing (needs CREATE on the database once; see docs). */
export async function ensurePositionTable(client: pg.ClientBase): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS kasho`);
  await client.query(`CREATE TABLE IF NOT EXISTS ${POSITION_TABLE} (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    epoch text NOT NULL,
    lsn numeric(20, 0) NOT NULL,
    seq numeric(20, 0) NOT NULL,
    chain_lsn numeric(20, 0) NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
}

export async function readAppliedState(client: pg.ClientBase): Promise<AppliedState> {
  const { rows } = await client.query<{ epoch: string; lsn: string; seq: string; chain_lsn: string }>(
    `SELECT epoch, lsn::text, seq::text, chain_lsn::text FROM ${POSITION_TABLE} WHERE id = 1`,
  );
  const row = rows[0];
  if (!row) return { epoch: '', position: { lsn: 0n, seq: 0n }, chainLsn: 0n };
  return {
    epoch: row.epoch,
    position: { lsn: BigInt(row.lsn), seq: BigInt(row.seq) },
    chainLsn: BigInt(row.chain_lsn),
  };
}

export function writeAppliedStateStatement(state: AppliedState): { text: string; values: string[] } {
  return {
    text: `INSERT INTO ${POSITION_TABLE} (id, epoch, lsn, seq, chain_lsn, applied_at)
           VALUES (1, $1, $2, $3, $4, now())
           ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch, lsn = EXCLUDED.lsn, seq = EXCLUDED.seq,
             chain_lsn = EXCLUDED.chain_lsn, applied_at = EXCLUDED.applied_at`,
    values: [
      state.epoch,
      state.position.lsn.toString(),
      state.position.seq.toString(),
      state.chainLsn.toString(),
    ],
  };
}

/** Key of the advisory lock that makes one translicator the only writer of a target. */
export const APPLY_LOCK_KEY = 0x6b6173686f; // "kasho"
