import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

describe('npm run demo (the README’s first command), for a few seconds', function () {
  this.timeout(300_000);

  it('prepares, bootstraps, streams and shows sanitized rows next to the originals, then stops cleanly', async () => {
    const child = spawn(process.execPath, ['--conditions=development', '--import', 'tsx', 'hack/demo.ts'], {
      cwd: root,
      env: { ...process.env, KASHO_DEMO_SECONDS: '6' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((done) => child.once('exit', done));
    if (code !== 0) console.log(output);
    expect(code).to.equal(0);
    for (const step of [
      'Loading the sample SaaS database',
      'Preparing the databases',
      'Bootstrapping',
      'The same users, source and sanitized target',
      'Live changes',
      'Everything stopped.',
    ]) {
      expect(output).to.contain(step);
    }
    const pairs = [...output.matchAll(/^ {2}email: (\S+)\s+\| email: (\S+)$/gm)];
    expect(pairs.length).to.be.greaterThan(2);
    for (const [, original, copy] of pairs) {
      expect(copy).to.not.equal(original);
      expect(copy).to.match(/@example\.(com|net|org)$/);
    }
    expect(output).to.not.contain('(not applied yet)');
  });
});
