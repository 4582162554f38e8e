import { KashoError, type Change, type Position } from '@kasho/common';

/** The consumer saw something other than the next change it expected: applying further could lose data. */
export class StreamGapError extends KashoError {}

export type Verdict = 'apply' | 'skip';

/**
 * Checks the order of the stream against what the target has applied (see the gap-detection rules in
 * proto/kasho/change_stream.proto): inside a transaction positions are contiguous; a transaction may start only
 * if its previous_commit_lsn is no later than the last applied commit (the chain). Changes at or before the applied
 * position are duplicates from a resend and are skipped. Pure: the applier calls commit() once a transaction is
 * durable.
 */
export class StreamSequencer {
  private open: { lsn: bigint; nextSeq: bigint; skipping: boolean } | undefined;

  constructor(
    private applied: Position,
    private chainLsn: bigint,
  ) {}

  get position(): Position {
    return this.applied;
  }

  get chain(): bigint {
    return this.chainLsn;
  }

  get inTransaction(): boolean {
    return this.open !== undefined;
  }

  /** Whether to apply `change`; throws StreamGapError when the stream cannot be trusted. */
  accept(change: Change): Verdict {
    const position = change.position;
    const kind = change.kind;
    if (!position || !kind) throw new StreamGapError('a change without a position or kind arrived');
    if (kind.$case === 'relation') return 'apply';
    const at = `${position.lsn}/${position.seq}`;
    if (kind.$case === 'begin') {
      if (this.open)
        throw new StreamGapError(`a transaction began at ${at} before the one at ${this.open.lsn} ended`);
      const duplicate = !isAfter(position, this.applied);
      if (!duplicate && !kind.value.bootstrap && kind.value.previousCommitLsn > this.chainLsn) {
        throw new StreamGapError(
          `the stream continues after commit ${kind.value.previousCommitLsn} but the target has applied only up to commit ${this.chainLsn}: changes in between are missing`,
          'The buffer or the slot lost changes the target never got. Reset the bootstrap (kasho-ctl reset-bootstrap) and bootstrap again.',
        );
      }
      this.open = { lsn: position.lsn, nextSeq: position.seq + 1n, skipping: duplicate };
      return duplicate ? 'skip' : 'apply';
    }
    const open = this.open;
    if (!open) throw new StreamGapError(`a ${kind.$case} at ${at} arrived outside a transaction`);
    if (position.lsn !== open.lsn || position.seq !== open.nextSeq) {
      throw new StreamGapError(
        `expected position ${open.lsn}/${open.nextSeq} but received ${at}: the stream skipped a change`,
      );
    }
    open.nextSeq += 1n;
    if (kind.$case === 'commit') this.open = undefined;
    return open.skipping ? 'skip' : 'apply';
  }

  /** Records that everything through the Commit at `position` is durable on the target. */
  commit(position: Position, commitLsn: bigint): void {
    this.applied = position;
    if (commitLsn > this.chainLsn) this.chainLsn = commitLsn;
  }

  /** Forgets an open transaction (the stream broke; the resend starts it again). */
  abandon(): void {
    this.open = undefined;
  }
}

function isAfter(a: Position, b: Position): boolean {
  return a.lsn > b.lsn || (a.lsn === b.lsn && a.seq > b.seq);
}
