/** What the controller saw, handed to the pure decision (reconcile/decide.ts). */
import type { KashoPipeline } from '../api/pipeline.js';
import type { ChangeStreamState, PipelineStatus } from '../api/schema.js';
import type { InputsResult } from '../desired/inputs.js';
import type { DesiredObject } from '../desired/objects.js';

export interface JobObservation {
  name: string;
  /** Running until the Job has its terminal Complete or Failed condition (a retried pod is still Running). */
  phase: 'Running' | 'Succeeded' | 'Failed';
  reason?: string;
  message?: string;
  startTime?: string;
  completionTime?: string;
  /** The kasho.io/spec-hash annotation the operator put on it. */
  specHash?: string;
}

/** GetStatus, in the operator's terms (LSNs as text, counts as numbers). */
export interface ChangeStreamStatus {
  state: ChangeStreamState | 'UNKNOWN';
  slotName: string;
  startLsn: string;
  receivedLsn: string;
  confirmedLsn: string;
  /** Commit LSN of the last position the consumer acknowledged, as text; empty when none. */
  acknowledgedLsn: string;
  accumulatedChanges: number;
  bootstrapChanges: number;
  retainedWalBytes: number;
  epoch: string;
  lastError: string;
}

export type ChangeStreamObservation =
  { reachable: true; status: ChangeStreamStatus } | { reachable: false; error: string };

export interface TranslicatorMetrics {
  lagSeconds?: number;
  lagBytes?: number;
  /** Commit LSN of the last applied transaction, as text. */
  appliedLsn?: string;
}

export type SlotObservation =
  | { reachable: true; exists: boolean; active: boolean; retainedWalBytes?: number }
  | { reachable: false; error: string };

export interface Observed {
  now: Date;
  pipeline: KashoPipeline;
  /** The operator's DEFAULT_IMAGE, used when spec.image is empty. */
  defaultImage: string;
  /** A fresh random value, used only if the generated transform secret has to be created. */
  randomSecret: string;
  inputs: InputsResult;
  prepareJob?: JobObservation;
  bootstrapJob?: JobObservation;
  /** Whether the managed Redis StatefulSet exists (to remove it when the pipeline switches to an external one). */
  managedRedisPresent: boolean;
  /** Whether the connection Secret exists: if it never did, nothing was done on the source. */
  connectionSecretPresent: boolean;
  /** Asked once the preparation is done; undefined before. */
  changeStream?: ChangeStreamObservation;
  /** Read from the translicator's /metrics once it runs; undefined when it could not be read. */
  translicator?: TranslicatorMetrics;
  /** Read on the source when the change-stream cannot tell (suspended, unreachable). */
  sourceSlot?: SlotObservation;
}

export interface EventSpec {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
}

export type Action =
  /** mode skip: StartBootstrap then ReleaseSnapshot with nothing to load. */
  | { type: 'startBootstrapWithoutSnapshot' }
  | { type: 'completeBootstrap'; by: 'autoComplete' | 'annotation' | 'skip' }
  /** ResetBootstrap, then delete the bootstrap Job so that it runs again. */
  | { type: 'resetBootstrap'; by: 'annotation' | 'rerun' }
  /** Delete a Job whose settings changed, so that it runs again. */
  | { type: 'deleteJob'; name: string }
  /** Drop the slot and the publication on the source (deletion with reclaimPolicy Delete). */
  | { type: 'cleanupSource'; slot: string; publication: string };

export interface Plan {
  addFinalizer: boolean;
  /** Deletion may finish: the finalizer comes off (after the action, if any, succeeded). */
  removeFinalizer: boolean;
  /** Server-side applied every pass. */
  apply: DesiredObject[];
  /** Created when missing, never updated (Jobs are immutable; the generated transform secret must not change). */
  createIfAbsent: DesiredObject[];
  delete: ObjectRef[];
  action?: Action;
  removeAnnotations: string[];
  events: EventSpec[];
  status: PipelineStatus;
  /** Set when the next look should come sooner than the poll period (e.g. right after an action). */
  requeueAfterMs?: number;
}

export type ActionResult = { ok: true } | { ok: false; error: string; transient: boolean };
