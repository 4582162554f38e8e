/**
 * PostgreSQL sends timestamps as microseconds since its own epoch, 2000-01-01 00:00:00 UTC; the stream carries
 * microseconds since the Unix epoch.
 */
export const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

export function pgToUnixMicros(pgMicros: bigint): bigint {
  return pgMicros + PG_EPOCH_OFFSET_US;
}

export function unixToPgMicros(unixMicros: bigint): bigint {
  return unixMicros - PG_EPOCH_OFFSET_US;
}
