import pg from 'pg';
import { formatLsn, parseLsn } from '@kasho/common';

export interface CreatedSlot {
  slotName: string;
  consistentPoint: bigint;
  snapshotName: string;
}

export interface StreamHandlers {
  /** One CopyData message of the replication stream ('w' XLogData or 'k' keepalive), undecoded. */
  onCopyData(chunk: Buffer): void;
  /** The stream ended or the connection failed. */
  onEnd(error: Error | undefined): void;
}

/**
 * A connection in PostgreSQL's replication mode (`replication=database`). Two uses: creating the slot with an
 * exported snapshot (kept valid while this connection stays idle), and streaming changes from the slot.
 */
export class ReplicationSession {
  private ended = false;

  private constructor(private readonly client: pg.Client) {}

  static async connect(connectionString: string, applicationName: string): Promise<ReplicationSession> {
    const client = new pg.Client({
      connectionString,
      replication: 'database',
      application_name: applicationName,
    } as pg.ClientConfig);
    await client.connect();
    const session = new ReplicationSession(client);
    client.on('error', () => undefined);
    client.on('end', () => {
      session.ended = true;
    });
    return session;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT: the snapshot stays importable (pg_dump --snapshot, SET
   * TRANSACTION SNAPSHOT) until this session runs another command or disconnects.
   */
  async createSlotWithSnapshot(slotName: string): Promise<CreatedSlot> {
    const result = await this.client.query<{
      slot_name: string;
      consistent_point: string;
      snapshot_name: string;
    }>(`CREATE_REPLICATION_SLOT ${quoteIdent(slotName)} LOGICAL pgoutput EXPORT_SNAPSHOT`);
    const row = result.rows[0]!;
    return {
      slotName: row.slot_name,
      consistentPoint: parseLsn(row.consistent_point),
      snapshotName: row.snapshot_name,
    };
  }

  /** START_REPLICATION from the slot; the slot's confirmed position wins when it is ahead of `from`. */
  startStreaming(
    slotName: string,
    publicationName: string,
    protocolVersion: number,
    withMessages: boolean,
    from: bigint,
    handlers: StreamHandlers,
  ): void {
    const options = [
      `proto_version '${protocolVersion}'`,
      `publication_names '${quoteIdent(publicationName).replace(/'/g, "''")}'`,
      ...(withMessages ? [`messages 'true'`] : []),
    ];
    const connection = (this.client as unknown as { connection: PgConnection }).connection;
    connection.on('copyData', (message: { chunk: Buffer }) => handlers.onCopyData(message.chunk));
    this.client
      .query(
        `START_REPLICATION SLOT ${quoteIdent(slotName)} LOGICAL ${formatLsn(from)} (${options.join(', ')})`,
      )
      .then(
        () => handlers.onEnd(undefined),
        (error: Error) => handlers.onEnd(error),
      );
  }

  /** Sends a CopyData message (the standby status update) on the streaming connection. */
  send(chunk: Buffer): void {
    if (this.ended) return;
    (this.client as unknown as { connection: PgConnection }).connection.sendCopyFromChunk(chunk);
  }

  /** Stops reading from the socket (backpressure); the server buffers and eventually waits. */
  pause(): void {
    (this.client as unknown as { connection: PgConnection }).connection.stream.pause();
  }

  resume(): void {
    (this.client as unknown as { connection: PgConnection }).connection.stream.resume();
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.client.end().catch(() => undefined);
  }
}

interface PgConnection {
  on(event: 'copyData', listener: (message: { chunk: Buffer }) => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
  stream: { pause(): void; resume(): void };
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
