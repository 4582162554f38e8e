import { z } from 'zod';

/** A node of an OpenAPI v3 schema as a CustomResourceDefinition holds it. */
export type JsonSchema = { [key: string]: unknown };

const SAFE_INTEGER = Number.MAX_SAFE_INTEGER;

/** Keys a structural schema may carry, in the order they are written (stable output, readable diffs). */
const KEY_ORDER = [
  'description',
  'type',
  'format',
  'enum',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'default',
  'properties',
  'additionalProperties',
  'items',
  'required',
  'anyOf',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-validations',
];

class NotStructural extends Error {
  constructor(path: string, problem: string) {
    super(`${path || '<root>'}: ${problem} (a CRD needs a structural schema)`);
  }
}

/**
 * Turns zod's OpenAPI 3.0 output into a structural schema
 * (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
 * every node has a type, no unions except int-or-string, no `additionalProperties` next to `properties`, and
 * zod's artefacts (safe-integer bounds, the date-time regex) removed. Anything it cannot express throws, naming
 * the path, so a schema change that breaks the CRD fails the generator and its test.
 */
export function structural(node: JsonSchema, path = ''): JsonSchema {
  if (node['x-kubernetes-int-or-string'] === true) {
    return ordered({
      description: node.description,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      pattern: findPattern(node),
      default: node.default,
      'x-kubernetes-int-or-string': true,
    });
  }
  if (node['x-kubernetes-preserve-unknown-fields'] === true) {
    return ordered({
      description: node.description,
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
    });
  }
  for (const key of ['anyOf', 'oneOf', 'allOf', 'not', '$ref', 'nullable', 'const']) {
    if (key in node) throw new NotStructural(path, `"${key}" cannot be expressed`);
  }
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case '$schema':
      case 'id':
        break;
      case 'properties': {
        const properties: JsonSchema = {};
        for (const [name, child] of Object.entries(value as Record<string, JsonSchema>)) {
          properties[name] = structural(child, `${path}.${name}`);
        }
        out.properties = properties;
        break;
      }
      case 'additionalProperties':
        if (value === false) break;
        if ('properties' in node)
          throw new NotStructural(path, 'properties and additionalProperties together');
        out.additionalProperties = structural(value as JsonSchema, `${path}[*]`);
        break;
      case 'items':
        out.items = structural(value as JsonSchema, `${path}[]`);
        break;
      case 'minimum':
        if (value !== -SAFE_INTEGER) out.minimum = value;
        break;
      case 'maximum':
        if (value !== SAFE_INTEGER) out.maximum = value;
        break;
      case 'pattern':
        // zod spells format: date-time out as a regex too; the format is what the API server checks.
        if (node.format !== 'date-time') out.pattern = value;
        break;
      default:
        out[key] = value;
    }
  }
  if (typeof out.type !== 'string') throw new NotStructural(path, 'a node without a type');
  return ordered(out);
}

function findPattern(node: JsonSchema): string | undefined {
  const options = (node.anyOf ?? []) as JsonSchema[];
  for (const option of options) if (typeof option.pattern === 'string') return option.pattern;
  return undefined;
}

function ordered(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const key of KEY_ORDER) if (node[key] !== undefined) out[key] = node[key];
  for (const key of Object.keys(node)) {
    if (!KEY_ORDER.includes(key)) throw new Error(`unexpected schema key "${key}"; add it to KEY_ORDER`);
  }
  return out;
}

/** The structural OpenAPI schema of a zod schema, as accepted input (defaulted fields are not required). */
export function zodToStructuralSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io: 'input',
    unrepresentable: 'throw',
    cycles: 'throw',
    reused: 'inline',
  }) as JsonSchema;
  return structural(json);
}
