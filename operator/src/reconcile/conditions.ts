import type { Condition, ConditionType } from '../api/schema.js';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ConditionUpdate {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/**
 * Sets one condition, keeping lastTransitionTime when the status did not change (the Kubernetes convention: the
 * time says since when it has been so, not when it was last looked at).
 */
export function setCondition(
  conditions: Condition[],
  update: ConditionUpdate,
  now: Date,
  observedGeneration: number | undefined,
): Condition[] {
  const previous = conditions.find((c) => c.type === update.type);
  const next: Condition = {
    ...update,
    lastTransitionTime:
      previous && previous.status === update.status ? previous.lastTransitionTime : now.toISOString(),
    ...(observedGeneration !== undefined ? { observedGeneration } : {}),
  };
  const others = conditions.filter((c) => c.type !== update.type);
  return [...others, next].sort((a, b) => ORDER.indexOf(a.type) - ORDER.indexOf(b.type));
}

const ORDER: ConditionType[] = ['Ready', 'Prepared', 'Bootstrapped', 'Streaming', 'Degraded'];

export function conditionOf(conditions: Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: Condition[] | undefined, type: ConditionType): boolean {
  return conditionOf(conditions, type)?.status === 'True';
}

/** "1.4 MiB" */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** "0.4s", "12s", "3m4s", "2h5m" */
export function formatSeconds(seconds: number): string {
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)}m${whole % 60}s`;
  return `${Math.floor(whole / 3600)}h${Math.floor((whole % 3600) / 60)}m`;
}
