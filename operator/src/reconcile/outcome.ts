/** Folds the result of a plan's action into its status and events (pure, like decide). */
import { ANNOTATIONS } from '../api/pipeline.js';
import { setCondition } from './conditions.js';
import { CLEANUP_ATTEMPTS_BEFORE_HINT, cleanupRetryDelayMs } from './decide.js';
import type { ActionResult, Observed, Plan } from './observed.js';

/** How soon to look again after an action changed something. */
export const AFTER_ACTION_MS = 500;

export function applyOutcome(observed: Observed, plan: Plan, result: ActionResult): Plan {
  const action = plan.action;
  if (!action) return plan;
  const next: Plan = { ...plan, status: structuredClone(plan.status), events: [...plan.events] };
  const status = next.status;
  const generation = observed.pipeline.metadata.generation;
  const condition = (
    type: 'Bootstrapped' | 'Streaming',
    value: 'True' | 'False',
    reason: string,
    message: string,
  ) => {
    status.conditions = setCondition(
      status.conditions ?? [],
      { type, status: value, reason, message },
      observed.now,
      generation,
    );
  };
  const removeAnnotation = (key: string) => {
    next.removeAnnotations = [...new Set([...next.removeAnnotations, key])];
  };
  const { name, namespace } = observed.pipeline.metadata;

  if (!result.ok) {
    const verb = {
      startBootstrapWithoutSnapshot: 'StartBootstrap',
      completeBootstrap: 'CompleteBootstrap',
      resetBootstrap: 'ResetBootstrap',
      deleteJob: 'Deleting the Job',
      cleanupSource: 'Dropping the slot and the publication on the source',
    }[action.type];
    const message = `${verb} failed: ${result.error}`;
    status.lastError = message;
    next.requeueAfterMs = undefined;
    if (action.type === 'cleanupSource') {
      const attempts = (status.cleanup?.attempts ?? 0) + 1;
      status.cleanup = { attempts, lastAttemptAt: observed.now.toISOString(), lastError: result.error };
      const hint =
        attempts >= CLEANUP_ATTEMPTS_BEFORE_HINT
          ? `; after ${attempts} attempts, to delete the pipeline anyway (and drop them yourself): kubectl annotate kp ${name} -n ${namespace} ${ANNOTATIONS.skipSourceCleanup}=true`
          : '; retrying';
      next.events.push({ type: 'Warning', reason: 'SourceCleanupFailed', message: `${message}${hint}` });
      next.requeueAfterMs = cleanupRetryDelayMs(attempts);
      return next;
    }
    next.events.push({
      type: 'Warning',
      reason: `${action.type[0]?.toUpperCase()}${action.type.slice(1)}Failed`,
      message,
    });
    // An annotation is acted on once: a definite refusal consumes it; an unreachable change-stream does not.
    if (!result.transient && 'by' in action && action.by === 'annotation') {
      removeAnnotation(
        action.type === 'completeBootstrap' ? ANNOTATIONS.completeBootstrap : ANNOTATIONS.resetBootstrap,
      );
    }
    return next;
  }

  next.requeueAfterMs = AFTER_ACTION_MS;
  switch (action.type) {
    case 'startBootstrapWithoutSnapshot':
      next.events.push({
        type: 'Normal',
        reason: 'SlotCreated',
        message: `Slot ${observed.pipeline.spec.slot} created without a snapshot (bootstrap.mode skip)`,
      });
      break;
    case 'completeBootstrap': {
      const rows = status.bootstrap?.rows ?? 0;
      const accumulated = status.bootstrap?.accumulatedChanges ?? 0;
      status.bootstrap = {
        ...status.bootstrap,
        completedAt: observed.now.toISOString(),
        completedBy: action.by,
      };
      status.changeStreamState = 'STREAMING';
      const message = `CompleteBootstrap (${action.by}): ${rows} snapshot rows, then ${accumulated} accumulated changes, then live changes go to pg-translicator`;
      condition('Bootstrapped', 'True', 'Completed', message);
      next.events.push({ type: 'Normal', reason: 'BootstrapCompleted', message });
      if (action.by === 'annotation') removeAnnotation(ANNOTATIONS.completeBootstrap);
      break;
    }
    case 'resetBootstrap': {
      status.bootstrap = undefined;
      status.changeStreamState = 'WAITING';
      const message =
        action.by === 'annotation'
          ? 'ResetBootstrap (annotation): the slot and the buffer were dropped; the bootstrap runs again'
          : 'ResetBootstrap: the bootstrap Job was gone before it finished; it runs again';
      condition('Bootstrapped', 'False', 'Reset', message);
      condition('Streaming', 'False', 'NotBootstrapped', 'The bootstrap is not complete');
      next.events.push({ type: 'Normal', reason: 'BootstrapReset', message });
      if (action.by === 'annotation') removeAnnotation(ANNOTATIONS.resetBootstrap);
      break;
    }
    case 'deleteJob':
      next.events.push({
        type: 'Normal',
        reason: 'JobDeleted',
        message: `Job ${action.name} deleted to run again`,
      });
      break;
    case 'cleanupSource':
      status.cleanup = {
        attempts: (status.cleanup?.attempts ?? 0) + 1,
        lastAttemptAt: observed.now.toISOString(),
      };
      next.removeFinalizer = true;
      next.events.push({
        type: 'Normal',
        reason: 'SourceCleaned',
        message: `Dropped slot ${action.slot} and publication ${action.publication} on the source`,
      });
      break;
  }
  status.lastError = undefined;
  return next;
}
