/**
 * The change-stream's bootstrap state machine, as pure decisions. The I/O layer observes the world (what Redis
 * remembers, which slot really exists in PostgreSQL), asks these functions what to do, and carries it out.
 *
 *   WAITING --StartBootstrap--> ACCUMULATING --CompleteBootstrap--> STREAMING
 *      ^------------------------ ResetBootstrap (from any state) ------------'
 */

export type BootstrapStateName = 'WAITING' | 'ACCUMULATING' | 'STREAMING';

/** What pg-change-stream keeps in Redis about itself. */
export interface PersistedState {
  state: BootstrapStateName;
  /** Changes with every StartBootstrap; consumers compare it with the epoch of the position they hold. */
  epoch: string;
  /** The slot's consistent point; undefined until the slot exists. */
  startLsn: bigint | undefined;
}

export interface ObservedSlot {
  plugin: string;
  database: string;
  confirmedFlushLsn: bigint | undefined;
}

export interface ObservedWorld {
  /** Undefined when Redis has no state for this slot (new, or Redis lost its data). */
  persisted: PersistedState | undefined;
  /** Undefined when the slot does not exist in PostgreSQL. */
  slot: ObservedSlot | undefined;
  slotName: string;
  database: string;
}

export type Reconciliation =
  | { action: 'start-fresh'; next: PersistedState }
  | { action: 'keep'; next: PersistedState }
  | {
      /** Redis lost the buffer but the slot kept every unconfirmed change: rebuild the live stream from it. */
      action: 'rebuild-from-slot';
      next: PersistedState;
      warning: string;
    }
  | {
      /** The slot vanished under an active bootstrap or stream: what it held is gone; start over. */
      action: 'slot-lost';
      next: PersistedState;
      error: string;
    }
  | {
      /** A slot exists that no bootstrap of ours recorded: refuse to guess, tell the user. */
      action: 'foreign-slot';
      next: PersistedState;
      error: string;
    }
  | { action: 'refuse'; error: string };

const WAITING: PersistedState = { state: 'WAITING', epoch: '', startLsn: undefined };

export function reconcile(world: ObservedWorld): Reconciliation {
  const { persisted, slot, slotName } = world;
  if (slot && slot.plugin !== 'pgoutput') {
    return {
      action: 'refuse',
      error: `replication slot ${slotName} uses the output plugin ${slot.plugin}, not pgoutput. Drop it (SELECT pg_drop_replication_slot('${slotName}')) or set SLOT_NAME to another name.`,
    };
  }
  if (slot && slot.database !== world.database) {
    return {
      action: 'refuse',
      error: `replication slot ${slotName} belongs to database ${slot.database}, not ${world.database}. Set SLOT_NAME to a slot of this database.`,
    };
  }
  if (!persisted) {
    if (!slot) return { action: 'start-fresh', next: WAITING };
    return {
      action: 'rebuild-from-slot',
      next: { state: 'STREAMING', epoch: '', startLsn: slot.confirmedFlushLsn },
      warning: `Redis holds no state for slot ${slotName} but the slot exists: the buffer was lost. Rebuilding the stream from the slot; consumers that had applied less than the slot's confirmed position will stop and ask for a new bootstrap.`,
    };
  }
  if (persisted.state === 'WAITING') {
    if (!slot) return { action: 'keep', next: persisted };
    return {
      action: 'foreign-slot',
      next: persisted,
      error: `replication slot already exists: ${slotName} was not created by a bootstrap of this change-stream. If no other Kasho uses it, drop it with SELECT pg_drop_replication_slot('${slotName}'), or call ResetBootstrap.`,
    };
  }
  if (!slot) {
    return {
      action: 'slot-lost',
      next: WAITING,
      error: `replication slot ${slotName} disappeared while ${persisted.state}: changes made since could not be captured. The buffer was cleared; run the bootstrap again.`,
    };
  }
  const startLsn = persisted.startLsn ?? slot.confirmedFlushLsn;
  return { action: 'keep', next: { ...persisted, startLsn } };
}

export class StateTransitionError extends Error {
  constructor(
    readonly call: string,
    readonly state: BootstrapStateName,
    readonly hint: string,
  ) {
    super(`${call} is not possible in state ${state}: ${hint}`);
    this.name = 'StateTransitionError';
  }
}

export function startBootstrap(current: PersistedState, epoch: string): PersistedState {
  if (current.state !== 'WAITING') {
    throw new StateTransitionError(
      'StartBootstrap',
      current.state,
      current.state === 'STREAMING'
        ? 'the bootstrap is complete and changes are streaming. To bootstrap again, call ResetBootstrap first.'
        : 'a bootstrap is already in progress. Finish it with CompleteBootstrap, or call ResetBootstrap to start over.',
    );
  }
  return { state: 'ACCUMULATING', epoch, startLsn: undefined };
}

export function completeBootstrap(current: PersistedState): PersistedState {
  if (current.state !== 'ACCUMULATING') {
    throw new StateTransitionError(
      'CompleteBootstrap',
      current.state,
      current.state === 'WAITING'
        ? 'no bootstrap has started. Run scripts/bootstrap-kasho.sh (or StartBootstrap) first.'
        : 'the bootstrap is already complete.',
    );
  }
  return { ...current, state: 'STREAMING' };
}

export function resetBootstrap(): PersistedState {
  return WAITING;
}

/** Whether captured changes may be served to a consumer. */
export function servesChanges(state: BootstrapStateName): boolean {
  return state === 'STREAMING';
}

/** Whether the replication connection should be capturing. */
export function captures(state: BootstrapStateName): boolean {
  return state !== 'WAITING';
}
