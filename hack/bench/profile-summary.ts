/**
 * Where a process spent its CPU, from a node --cpu-prof profile (npm run bench -- --profile writes one per Kasho
 * process): self time by function and by file or package, and total (inclusive) time of Kasho's own functions.
 *
 *   node --import tsx hack/bench/profile-summary.ts FILE.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** "services/pg-translicator/src/apply/applier.ts", "node_modules/pg", "node:internal/...", "(program)". */
function place(url: string): string {
  if (!url) return '(native)';
  const path = url.replace(/^file:\/\//, '');
  const modules = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(path);
  if (modules) return `node_modules/${modules[1]}`;
  const services = /services\/[^/]+\/(src|dist)\/.*$/.exec(path);
  if (services) return services[0];
  if (path.startsWith('node:')) return path.split('/').slice(0, 2).join('/');
  return path;
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' } },
  });
  const top = Number(values.top);
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const self = new Map<number, number>();
    profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    const idle = [...self.entries()]
      .filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)')
      .reduce((a, [, t]) => a + t, 0);

    const byFunction = new Map<string, number>();
    const byPlace = new Map<string, number>();
    const inclusive = new Map<string, number>();
    for (const [id, time] of self) {
      const frame = byId.get(id)!.callFrame;
      const fn = `${frame.functionName || '(anonymous)'} ${place(frame.url)}:${frame.lineNumber + 1}`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + time);
      byPlace.set(place(frame.url), (byPlace.get(place(frame.url)) ?? 0) + time);
      // Inclusive time of Kasho's own functions: each counted once per sample even when recursive.
      const seen = new Set<string>();
      for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
        const f = byId.get(n)!.callFrame;
        if (!/services\//.test(f.url)) continue;
        const key = `${f.functionName || '(anonymous)'} ${place(f.url)}:${f.lineNumber + 1}`;
        if (seen.has(key)) continue;
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + time);
      }
    }
    const ms = (us: number) =>
      `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%`;
    const print = (title: string, map: Map<string, number>) => {
      console.log(`\n${title}`);
      for (const [name, time] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
        console.log(`  ${ms(time)}  ${name}`);
      }
    };
    console.log(`${file}`);
    console.log(
      `  ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s profiled, ${((total - idle) / 1e6).toFixed(1)} s busy (${((100 * (total - idle)) / total).toFixed(0)}%)`,
    );
    print('Self time by file or package', byPlace);
    print('Self time by function', byFunction);
    print("Total time of Kasho's functions (including what they call)", inclusive);
  }
}

main();
