import { expect } from 'chai';
import type { Change } from '@kasho/common';
import { StreamGapError, StreamSequencer } from '../../../src/apply/sequencer.js';

function begin(lsn: bigint, previous: bigint, seq = 0n, bootstrap = false): Change {
  return {
    position: { lsn, seq },
    kind: {
      $case: 'begin',
      value: { commitLsn: lsn, commitTimeUs: 0n, xid: 1, previousCommitLsn: previous, bootstrap, origin: '' },
    },
  };
}
function truncate(lsn: bigint, seq: bigint): Change {
  return {
    position: { lsn, seq },
    kind: { $case: 'truncate', value: { tables: [], cascade: false, restartIdentity: false } },
  };
}
function commit(lsn: bigint, seq: bigint, commitLsn = lsn): Change {
  return {
    position: { lsn, seq },
    kind: { $case: 'commit', value: { commitLsn, endLsn: commitLsn, commitTimeUs: 0n } },
  };
}

describe('stream sequencing on the consumer', () => {
  it('applies a chained stream and advances the chain on commit', () => {
    const sequencer = new StreamSequencer({ lsn: 0n, seq: 0n }, 0n);
    for (const change of [begin(100n, 0n), truncate(100n, 1n), commit(100n, 2n)]) {
      expect(sequencer.accept(change)).to.equal('apply');
    }
    sequencer.commit({ lsn: 100n, seq: 2n }, 100n);
    expect(sequencer.accept(begin(200n, 100n))).to.equal('apply');
  });

  it('stops on a missing transaction', () => {
    const sequencer = new StreamSequencer({ lsn: 100n, seq: 2n }, 100n);
    expect(() => sequencer.accept(begin(300n, 200n))).to.throw(
      StreamGapError,
      /changes in between are missing/,
    );
  });

  it('stops on a missing change inside a transaction', () => {
    const sequencer = new StreamSequencer({ lsn: 0n, seq: 0n }, 0n);
    sequencer.accept(begin(100n, 0n));
    expect(() => sequencer.accept(truncate(100n, 2n))).to.throw(StreamGapError, /expected position 100\/1/);
  });

  it('skips a transaction it already applied (resent after a restart)', () => {
    const sequencer = new StreamSequencer({ lsn: 100n, seq: 2n }, 100n);
    expect(sequencer.accept(begin(100n, 50n))).to.equal('skip');
    expect(sequencer.accept(truncate(100n, 1n))).to.equal('skip');
    expect(sequencer.accept(commit(100n, 2n))).to.equal('skip');
    expect(sequencer.accept(begin(150n, 100n))).to.equal('apply');
  });

  it('lets the snapshot’s last commit carry the chain to the first live transaction', () => {
    const sequencer = new StreamSequencer({ lsn: 0n, seq: 0n }, 0n);
    expect(sequencer.accept(begin(0n, 0n, 1n, true))).to.equal('apply');
    expect(sequencer.accept(commit(0n, 2n, 500n))).to.equal('apply');
    sequencer.commit({ lsn: 0n, seq: 2n }, 500n);
    expect(sequencer.accept(begin(600n, 500n))).to.equal('apply');
  });

  it('a stream rebuilt from the slot is refused by a consumer that never reached its start', () => {
    const sequencer = new StreamSequencer({ lsn: 0n, seq: 0n }, 0n);
    expect(() => sequencer.accept(begin(900n, 800n))).to.throw(StreamGapError);
  });
});
