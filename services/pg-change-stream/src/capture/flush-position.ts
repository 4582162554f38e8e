/**
 * The LSN pg-change-stream reports to PostgreSQL as flushed (the slot's confirmed_flush_lsn): the point before
 * which the server may discard WAL and will not send transactions again. It follows the consumer's
 * acknowledgements and nothing else: after Redis loses the buffer, the stream is rebuilt from this point and its
 * chain starts here (proto/kasho/change_stream.proto), so it must never pass what the consumer applied, or a
 * consumer that is fully up to date would see a gap.
 *
 * An idle database still must not pile up WAL. When everything buffered was acknowledged and the server reports
 * WAL beyond it (writes elsewhere in the cluster, checkpoints, logical messages), a heartbeat is buffered: an
 * empty transaction whose commit LSN lies just below the server's WAL end. The consumer applies it like any other
 * transaction (its chain moves there) and acknowledges it, and the acknowledgement moves the slot.
 */
export interface FlushInputs {
  /** What was confirmed before; the result never goes backwards. */
  confirmed: bigint;
  /** Commit LSN the consumer durably applied, if any. */
  acknowledged: bigint | undefined;
}

export function nextFlushLsn(inputs: FlushInputs): bigint {
  return inputs.acknowledged !== undefined && inputs.acknowledged > inputs.confirmed
    ? inputs.acknowledged
    : inputs.confirmed;
}

export interface HeartbeatInputs {
  /** What the slot has confirmed. */
  confirmed: bigint;
  /** Commit LSN the consumer durably applied, if any. */
  acknowledged: bigint | undefined;
  /** Commit LSN of the last transaction (or heartbeat) written to the buffer, if any. */
  lastBufferedCommit: bigint | undefined;
  /** Where the chain starts when nothing was buffered yet: the slot's start or confirmed position. */
  chainFrom: bigint;
  /** A transaction is being received, or received data waits to be buffered. */
  insideTransaction: boolean;
  /** The server's WAL end from its last keepalive: every transaction committed before it has been received. */
  serverWalEnd: bigint;
}

/**
 * The commit LSN for a heartbeat, or undefined when none is due. It is the server's WAL end minus one: WAL records
 * start at 8-byte aligned positions at or after the WAL end, so no real transaction can commit at that LSN, and
 * every later one commits after it. At most one heartbeat waits for its acknowledgement at a time.
 */
export function heartbeatLsn(inputs: HeartbeatInputs): bigint | undefined {
  if (inputs.insideTransaction || inputs.serverWalEnd === 0n) return undefined;
  const last = inputs.lastBufferedCommit;
  if (last !== undefined && (inputs.acknowledged === undefined || inputs.acknowledged < last))
    return undefined;
  const lsn = inputs.serverWalEnd - 1n;
  if (lsn <= (last ?? inputs.chainFrom) || lsn <= inputs.confirmed) return undefined;
  return lsn;
}
