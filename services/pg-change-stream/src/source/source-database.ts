import pg from 'pg';
import { parseLsn } from '@kasho/common';

export interface SlotInfo {
  plugin: string;
  database: string;
  confirmedFlushLsn: bigint | undefined;
  restartLsn: bigint | undefined;
  activePid: number | undefined;
}

/** Ordinary (non-replication) queries against the source: catalog look-ups, slot inspection, slot removal. */
export class SourceDatabase {
  private readonly pool: pg.Pool;

  constructor(connectionString: string) {
    this.pool = new pg.Pool({ connectionString, max: 2, application_name: 'kasho-change-stream' });
    // Idle pooled connections that die (server restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  async serverVersionNum(): Promise<number> {
    const { rows } = await this.pool.query<{ v: string }>(
      "SELECT current_setting('server_version_num') AS v",
    );
    return Number(rows[0]!.v);
  }

  async serverVersion(): Promise<string> {
    const { rows } = await this.pool.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return rows[0]!.v;
  }

  async currentDatabase(): Promise<string> {
    const { rows } = await this.pool.query<{ db: string }>('SELECT current_database() AS db');
    return rows[0]!.db;
  }

  async slot(slotName: string): Promise<SlotInfo | undefined> {
    const { rows } = await this.pool.query<{
      plugin: string;
      database: string;
      confirmed: string | null;
      restart: string | null;
      active_pid: number | null;
    }>(
      `SELECT plugin, database, confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart, active_pid
         FROM pg_replication_slots WHERE slot_name = $1`,
      [slotName],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      plugin: row.plugin,
      database: row.database,
      confirmedFlushLsn: row.confirmed ? parseLsn(row.confirmed) : undefined,
      restartLsn: row.restart ? parseLsn(row.restart) : undefined,
      activePid: row.active_pid ?? undefined,
    };
  }

  /** Bytes of WAL the slot keeps on the source's disk. */
  async retainedWalBytes(slotName: string): Promise<bigint | undefined> {
    const { rows } = await this.pool.query<{ bytes: string | null }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS bytes
         FROM pg_replication_slots WHERE slot_name = $1`,
      [slotName],
    );
    const bytes = rows[0]?.bytes;
    return bytes ? BigInt(bytes) : undefined;
  }

  async currentWalLsn(): Promise<bigint> {
    const { rows } = await this.pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    return parseLsn(rows[0]!.lsn);
  }

  async publicationExists(name: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [name]);
    return (rowCount ?? 0) > 0;
  }

  /**
   * format_type() of each (oid, typmod), for columns whose type is not built in (enums, domains, ...). With an
   * empty search_path every non-catalog type comes back schema-qualified ("public.mood").
   */
  async typeNames(types: ReadonlyArray<{ oid: number; typmod: number }>): Promise<string[]> {
    if (types.length === 0) return [];
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN READ ONLY');
      await client.query(`SET LOCAL search_path = ''`);
      const { rows } = await client.query<{ name: string }>(
        `SELECT pg_catalog.format_type(t.oid, t.typmod) AS name
           FROM unnest($1::pg_catalog.oid[], $2::pg_catalog.int4[]) WITH ORDINALITY AS t(oid, typmod, n) ORDER BY t.n`,
        [types.map((t) => t.oid), types.map((t) => t.typmod)],
      );
      await client.query('COMMIT');
      return rows.map((row) => row.name);
    } finally {
      client.release();
    }
  }

  /** Waits until no walsender holds the slot (or it is gone), so that its confirmed position is final. */
  async waitForSlotRelease(slotName: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const slot = await this.slot(slotName);
      if (!slot || slot.activePid === undefined || Date.now() > deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Drops the slot, waiting briefly for a walsender that still holds it to let go. */
  async dropSlot(slotName: string): Promise<boolean> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const slot = await this.slot(slotName);
      if (!slot) return false;
      if (slot.activePid === undefined) {
        await this.pool.query('SELECT pg_drop_replication_slot($1)', [slotName]);
        return true;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(
      `replication slot ${slotName} is still in use by another connection; stop it and try again`,
    );
  }

  async end(): Promise<void> {
    await this.pool.end();
  }
}
