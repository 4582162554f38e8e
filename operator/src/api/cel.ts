import type { z } from 'zod';

/**
 * A cross-field rule, written twice on purpose: as CEL for the API server (`x-kubernetes-validations`, so
 * `kubectl apply` refuses a bad manifest) and as a TypeScript check for the controller, which validates what it
 * reads with the same zod schema. The unit tests hold both halves to the same examples.
 */
export interface CelRule<T> {
  /** CEL evaluated by the API server with `self` bound to the value. */
  rule: string;
  /** What is wrong and what to do; the API server prefixes it with the field's path. */
  message: string;
  /** The field the message is about, relative to `self` (e.g. `.autoComplete`). */
  fieldPath?: string;
  /** The same rule in TypeScript: true when the value is valid. */
  check(value: T): boolean;
}

export type CelValidation = Omit<CelRule<never>, 'check'>;

function zodPath(fieldPath: string | undefined): PropertyKey[] {
  return fieldPath ? fieldPath.split('.').filter((part) => part !== '') : [];
}

/** Attaches rules to a schema: a refinement for zod, and `x-kubernetes-validations` for the generated CRD. */
export function withCelRules<S extends z.ZodType>(schema: S, rules: CelRule<z.output<S>>[]): S {
  const refined = schema.superRefine((value, ctx) => {
    for (const rule of rules) {
      if (!rule.check(value))
        ctx.addIssue({ code: 'custom', message: rule.message, path: zodPath(rule.fieldPath) });
    }
  });
  const validations: CelValidation[] = rules.map(({ rule, message, fieldPath }) =>
    fieldPath ? { rule, message, fieldPath } : { rule, message },
  );
  return refined.meta({ 'x-kubernetes-validations': validations });
}
