import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  acquireDockerEngine,
  buildKashoImage,
  docker,
  dockerUnavailable,
  repoRoot,
  runDockerScript,
  type DockerEngine,
} from '../hack/docker/testing.js';

/** `docker run --rm` of the kasho image the way the guide's users run it: read-only root, /tmp writable. */
function runKasho(args: string[], env: Record<string, string> = {}) {
  const envArgs = Object.entries(env).flatMap(([name, value]) => ['-e', `${name}=${value}`]);
  return docker(['run', '--rm', '--read-only', '--tmpfs', '/tmp', ...envArgs, 'kasho', ...args], {
    timeoutMs: 60_000,
  });
}

describe('the kasho image (Dockerfile, hack/docker/build-image.sh)', function () {
  let engine: DockerEngine | undefined;

  before(async function () {
    const reason = dockerUnavailable();
    if (reason) {
      console.log(`    (skipped: ${reason})`);
      this.skip();
    }
    // A cold build (base images, npm ci, tsc) takes a few minutes on 2 cores; later runs find the image current.
    this.timeout(30 * 60_000);
    engine = await acquireDockerEngine();
    await buildKashoImage();
  });

  after(async function () {
    this.timeout(2 * 60_000);
    await engine?.release();
  });

  it('prints its help with no command (docker run --rm kasho) and exits 0', async () => {
    const result = await docker(['run', '--rm', 'kasho'], { timeoutMs: 60_000 });
    expect(result.status, result.output).to.equal(0);
    expect(result.stdout).to.contain('Kasho keeps a sanitized, live copy');
    for (const program of ['./pg-change-stream', './pg-translicator', './pg-bootstrap-sync']) {
      expect(result.stdout).to.contain(program);
    }
  });

  it('runs as the non-root user 10001', async () => {
    const result = await runKasho(['id', '-u']);
    expect(result.status, result.output).to.equal(0);
    expect(result.stdout.trim()).to.equal('10001');
  });

  it('pg-change-stream on a read-only root stops at once without PRIMARY_DATABASE_URL', async () => {
    const result = await runKasho(['./pg-change-stream']);
    expect(result.status).to.not.equal(0);
    expect(result.output).to.contain('PRIMARY_DATABASE_URL environment variable is required');
  });

  it('pg-translicator says that /app/config/transforms.yml is missing, without the password', async () => {
    const result = await runKasho(['./pg-translicator'], {
      CHANGE_STREAM_SERVICE: 'pg-change-stream:8080',
      REPLICA_DATABASE_URL: 'postgresql://kasho:hunter2-image@replica:5432/app?sslmode=disable',
    });
    expect(result.status).to.not.equal(0);
    expect(result.output).to.contain('Required config file /app/config/transforms.yml not found');
    expect(result.output).to.not.contain('hunter2-image');
  });

  // Every program the repository has in bin/ is in /app; kasho-operator only once its entry point exists.
  const programs = [
    'pg-change-stream',
    'pg-translicator',
    'pg-bootstrap-sync',
    'kasho-ctl',
    'kasho-operator',
  ].filter((program) => existsSync(join(repoRoot, 'bin', program)));
  for (const program of programs) {
    it(`./${program} --help exits 0`, async () => {
      const result = await runKasho([`./${program}`, '--help']);
      expect(result.status, result.output).to.equal(0);
      expect(result.output).to.contain(program);
    });
  }

  it('holds the guide’s scripts and the PostgreSQL client they use', async () => {
    for (const script of ['prepare-primary-db.sh', 'bootstrap-kasho.sh']) {
      const result = await runKasho([`./scripts/${script}`, '--help']);
      expect(result.status, result.output).to.equal(0);
      expect(result.stdout).to.contain(`Usage: scripts/${script}`);
    }
    const client = await runKasho(['sh', '-c', 'pg_dump --version && psql --version']);
    expect(client.status, client.output).to.equal(0);
    expect(client.stdout).to.match(/pg_dump \(PostgreSQL\) \d+/);
  });

  it('leaves /app unwritable for its user and /app/config empty, to mount transforms.yml over', async () => {
    const result = await docker(
      [
        'run',
        '--rm',
        'kasho',
        'sh',
        '-c',
        'if touch /app/x 2>/dev/null; then echo writable; fi; ls -A /app/config',
      ],
      { timeoutMs: 60_000 },
    );
    expect(result.status, result.output).to.equal(0);
    expect(result.stdout).to.equal('');
  });

  it('is tagged with the hash of its inputs, and a second build-image.sh builds nothing', async function () {
    this.timeout(10 * 60_000);
    const labels = await docker([
      'image',
      'inspect',
      '--format',
      '{{index .Config.Labels "io.kasho.inputs"}}',
      'kasho:latest',
    ]);
    expect(labels.status, labels.output).to.equal(0);
    const hash = labels.stdout.trim();
    expect(hash).to.match(/^[0-9a-f]{64}$/);
    const tagged = await docker(['image', 'inspect', `kasho:${hash.slice(0, 12)}`]);
    expect(tagged.status, tagged.output).to.equal(0);
    // The first run catches up with files edited since the build above (a work tree others edit too); the second
    // finds nothing to do.
    for (const expectUpToDate of [false, true]) {
      const again = await runDockerScript('build-image.sh', [], 5 * 60_000);
      expect(again.status, again.output).to.equal(0);
      if (expectUpToDate) expect(again.output).to.contain('kasho:latest is up to date');
    }
  });
});
