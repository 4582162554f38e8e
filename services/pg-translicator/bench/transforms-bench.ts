/**
 * Transformed values per second of each value transform, on one core (a single-threaded loop), plus whole rows
 * through createTransformer().transformRow.
 *
 *   npx tsx --conditions=development services/pg-translicator/bench/transforms-bench.ts [--seconds=1] [Type ...]
 */
import { buildBehavior, CATALOGUE, type ValueFn } from '../src/transforms/catalogue.js';
import { TEXT } from '../src/transforms/fit.js';
import { createTransformer, parseTransforms } from '../src/transforms/index.js';
import { Keyer } from '../src/transforms/keyed.js';
import { PasswordCache } from '../src/transforms/passwords.js';

const args = process.argv.slice(2);
const seconds = Number(args.find((a) => a.startsWith('--seconds='))?.split('=')[1] ?? '1');
const only = args.filter((a) => !a.startsWith('--'));
const DISTINCT = 100_000;

/** Inputs shaped like real column contents, since some types keep the layout of what they get. */
function input(type: string, i: number): string {
  const n = String(i).padStart(7, '0');
  switch (type) {
    case 'FakeSSN':
      return `${n.slice(0, 3)}-${n.slice(3, 5)}-${n.slice(5)}00`;
    case 'FakePhone':
      return `(555) ${n.slice(0, 3)}-${n.slice(3)}`;
    case 'FakeCreditCardNum':
      return `4111 ${n.slice(0, 4)} ${n.slice(4)}1 1111`;
    case 'FakeZip':
      return n.slice(2);
    case 'FakeDigits':
      return n;
    case 'DateShift':
    case 'FakeDateOfBirth':
      return new Date(Date.UTC(1950, 0, 1) + i * 86400000).toISOString().slice(0, 10);
    case 'Noise':
      return `${i}.50`;
    default:
      return `user${i}@customer-mail.com`;
  }
}

function valueFn(type: string, keyer: Keyer): ValueFn | undefined {
  const def = CATALOGUE[type];
  if (!def || def.stage !== 'value') return undefined;
  if (Object.values(def.params).some((spec) => spec.required)) return undefined;
  const params = Object.fromEntries(Object.entries(def.params).map(([name, spec]) => [name, spec.fallback]));
  const behavior = buildBehavior({ type, params, paths: [] }, { keyer, passwords: new PasswordCache() });
  return behavior.kind === 'value' ? behavior.apply : undefined;
}

/** Runs `fn` over the distinct inputs, round after round, for about `seconds`; returns calls per second. */
function measure(inputs: string[], fn: (value: string) => unknown): number {
  for (let i = 0; i < Math.min(20_000, inputs.length); i++) fn(inputs[i] as string);
  let calls = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  while (elapsed < budget) {
    for (const value of inputs) fn(value);
    calls += inputs.length;
    elapsed = process.hrtime.bigint() - start;
  }
  return calls / (Number(elapsed) / 1e9);
}

const keyer = new Keyer('benchmark-secret');
const types = Object.keys(CATALOGUE).filter((t) => (only.length ? only.includes(t) : true));
const rows: [string, number][] = [];

console.log(
  `node ${process.version}, ${seconds} s per type, ${DISTINCT} distinct inputs, one thread, text column\n`,
);
console.log(`${'type'.padEnd(24)}${'values/s'.padStart(12)}${'µs/value'.padStart(10)}`);
for (const type of types) {
  const fn = valueFn(type, keyer);
  if (!fn) continue;
  const inputs = Array.from({ length: DISTINCT }, (_, i) => input(type, i));
  const rate = measure(inputs, (value) => fn(value, TEXT));
  rows.push([type, rate]);
  console.log(
    `${type.padEnd(24)}${Math.round(rate).toLocaleString('en-US').padStart(12)}${(1e6 / rate).toFixed(2).padStart(10)}`,
  );
}

if (only.length === 0) {
  const config = parseTransforms(
    [
      'version: v1',
      'tables:',
      '  public.users:',
      '    email: FakeEmail',
      '    first_name: FakeFirstName',
      '    last_name: FakeLastName',
      '    phone: FakePhone',
      '    date_of_birth: FakeDateOfBirth',
      '    display_name: { type: Template, template: "{{.first_name}} {{.last_name}}" }',
    ].join('\n'),
    'bench.yml',
  );
  const transformer = createTransformer(config, { secret: 'benchmark-secret' });
  const table = { schema: 'public', name: 'users' };
  const columns = [
    { name: 'id', typeName: 'bigint' },
    { name: 'email', typeName: 'character varying(255)' },
    { name: 'first_name', typeName: 'text' },
    { name: 'last_name', typeName: 'text' },
    { name: 'phone', typeName: 'text' },
    { name: 'date_of_birth', typeName: 'date' },
    { name: 'display_name', typeName: 'text' },
    { name: 'created_at', typeName: 'timestamp with time zone' },
  ];
  const text = (t: string) => ({ kind: 'text' as const, text: t });
  const rowsIn = Array.from({ length: DISTINCT / 10 }, (_, i) => [
    text(String(i)),
    text(input('FakeEmail', i)),
    text(`First${i}`),
    text(`Last${i}`),
    text(input('FakePhone', i)),
    text(input('FakeDateOfBirth', i)),
    text(`First${i} Last${i}`),
    text('2024-01-31 10:00:00+00'),
  ]);
  let next = 0;
  const rate = measure(
    rowsIn.map(() => ''),
    () => transformer.transformRow(table, columns, rowsIn[next++ % rowsIn.length]!),
  );
  console.log(
    `\ntransformRow, public.users (8 columns, 6 transformed): ${Math.round(rate).toLocaleString('en-US')} rows/s`,
  );
}

const email = rows.find(([type]) => type === 'FakeEmail');
if (email) {
  console.log(`FakeEmail goal 200,000 values/s: ${email[1] >= 200_000 ? 'met' : 'NOT met'}`);
}
