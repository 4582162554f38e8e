/**
 * The LSN pg-change-stream reports to PostgreSQL as flushed (the slot's confirmed_flush_lsn): the point before
 * which the server may discard WAL and will not send transactions again. Confirming too far loses data when the
 * buffer is lost, so it follows the consumer's acknowledgements; only when nothing is pending anywhere may it
 * follow the server's own position, so an idle database does not pile up WAL.
 */
export interface FlushInputs {
  /** What was confirmed before; the result never goes backwards. */
  confirmed: bigint;
  /** Commit LSN the consumer durably applied, if any. */
  acknowledged: bigint | undefined;
  /** Commit LSN of the last transaction written to the buffer, if any. */
  lastBufferedCommit: bigint | undefined;
  /** A transaction is being received, or received data waits to be buffered. */
  insideTransaction: boolean;
  /** The server's WAL end from its last keepalive. */
  serverWalEnd: bigint;
}

export function nextFlushLsn(inputs: FlushInputs): bigint {
  let flush = inputs.confirmed;
  if (inputs.acknowledged !== undefined && inputs.acknowledged > flush) flush = inputs.acknowledged;
  const everythingAcknowledged =
    inputs.lastBufferedCommit === undefined ||
    (inputs.acknowledged !== undefined && inputs.acknowledged >= inputs.lastBufferedCommit);
  if (everythingAcknowledged && !inputs.insideTransaction && inputs.serverWalEnd > flush) {
    flush = inputs.serverWalEnd;
  }
  return flush;
}
