import { expect } from 'chai';
import {
  completeBootstrap,
  reconcile,
  resetBootstrap,
  startBootstrap,
  StateTransitionError,
  type ObservedWorld,
  type PersistedState,
} from '../../../src/state/bootstrap-state.js';

const slot = { plugin: 'pgoutput', database: 'app', confirmedFlushLsn: 0x1000n };
const accumulating: PersistedState = { state: 'ACCUMULATING', epoch: 'e1', startLsn: 0x900n };
const streaming: PersistedState = { state: 'STREAMING', epoch: 'e1', startLsn: 0x900n };
const waiting: PersistedState = { state: 'WAITING', epoch: '', startLsn: undefined };

function world(persisted: PersistedState | undefined, hasSlot: boolean, extra: Partial<ObservedWorld> = {}) {
  return { persisted, slot: hasSlot ? slot : undefined, slotName: 'kasho_slot', database: 'app', ...extra };
}

describe('bootstrap state: reconciling Redis with the real slot at start-up', () => {
  const table: Array<[string, ObservedWorld, string, string | undefined]> = [
    ['nothing anywhere', world(undefined, false), 'start-fresh', 'WAITING'],
    ['WAITING and no slot', world(waiting, false), 'keep', 'WAITING'],
    ['ACCUMULATING with its slot', world(accumulating, true), 'keep', 'ACCUMULATING'],
    ['STREAMING with its slot', world(streaming, true), 'keep', 'STREAMING'],
    ['slot but Redis lost everything', world(undefined, true), 'rebuild-from-slot', 'STREAMING'],
    ['ACCUMULATING but the slot is gone', world(accumulating, false), 'slot-lost', 'WAITING'],
    ['STREAMING but the slot is gone', world(streaming, false), 'slot-lost', 'WAITING'],
    ['WAITING but a slot exists', world(waiting, true), 'foreign-slot', 'WAITING'],
  ];
  for (const [name, observed, action, state] of table) {
    it(`${name} -> ${action}`, () => {
      const decision = reconcile(observed);
      expect(decision.action).to.equal(action);
      if ('next' in decision) expect(decision.next.state).to.equal(state);
    });
  }

  it('rebuilding from the slot starts the chain at the slot’s confirmed position', () => {
    const decision = reconcile(world(undefined, true));
    expect(decision.action).to.equal('rebuild-from-slot');
    if (decision.action === 'rebuild-from-slot') {
      expect(decision.next.startLsn).to.equal(0x1000n);
      expect(decision.warning).to.match(/buffer was lost/);
    }
  });

  it('fills a start LSN lost by a crash between slot creation and saving it', () => {
    const decision = reconcile(world({ ...accumulating, startLsn: undefined }, true));
    expect(decision.action).to.equal('keep');
    if (decision.action === 'keep') expect(decision.next.startLsn).to.equal(0x1000n);
  });

  it('the guide’s "replication slot already exists" for a slot no bootstrap recorded', () => {
    const decision = reconcile(world(waiting, true));
    expect(decision.action === 'foreign-slot' && decision.error).to.match(/^replication slot already exists/);
  });

  it('refuses a slot of another plugin or database', () => {
    expect(reconcile(world(streaming, true, { slot: { ...slot, plugin: 'wal2json' } })).action).to.equal(
      'refuse',
    );
    expect(reconcile(world(streaming, true, { slot: { ...slot, database: 'other' } })).action).to.equal(
      'refuse',
    );
  });
});

describe('bootstrap state: transitions', () => {
  it('WAITING -> ACCUMULATING -> STREAMING with a new epoch', () => {
    const started = startBootstrap(waiting, 'e2');
    expect(started).to.deep.equal({ state: 'ACCUMULATING', epoch: 'e2', startLsn: undefined });
    expect(completeBootstrap({ ...started, startLsn: 5n })).to.deep.equal({
      state: 'STREAMING',
      epoch: 'e2',
      startLsn: 5n,
    });
  });

  it('refuses calls in the wrong state, naming the state', () => {
    expect(() => startBootstrap(accumulating, 'x')).to.throw(StateTransitionError, /in state ACCUMULATING/);
    expect(() => startBootstrap(streaming, 'x')).to.throw(StateTransitionError, /ResetBootstrap/);
    expect(() => completeBootstrap(waiting)).to.throw(StateTransitionError, /in state WAITING/);
    expect(() => completeBootstrap(streaming)).to.throw(StateTransitionError, /already complete/);
  });

  it('reset returns to WAITING from anywhere', () => {
    expect(resetBootstrap().state).to.equal('WAITING');
  });
});
