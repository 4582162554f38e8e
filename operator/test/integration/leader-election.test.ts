/**
 * Two and three bin/kasho-operator processes (after npm run build) against one API server: one leads, the others
 * wait, and a successor takes over when the leader stops (released Lease) or dies (expired Lease).
 */
import { expect } from 'chai';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { buildKubeTools } from '../../../hack/testing/kube-apiserver.js';
import { freePort, startService, type RunningService } from '../../../hack/testing/services.js';
import {
  createNamespace,
  createPipeline,
  eventually,
  events,
  patchPipeline,
  startRig,
  waitForStatus,
  type Rig,
} from './support.js';

interface Operator {
  identity: string;
  port: number;
  service: RunningService;
}

describe('kasho-operator leader election (two processes, one Lease)', function () {
  this.timeout(180_000);
  let rig: Rig;
  let namespace: string;
  const operators: Operator[] = [];

  async function startOperator(identity: string): Promise<Operator> {
    const port = await freePort();
    const service = await startService(
      'kasho-operator',
      {
        KUBECONFIG: rig.server.kubeconfigPath,
        WATCH_NAMESPACE: namespace,
        LEADER_ELECTION_NAMESPACE: namespace,
        POD_NAME: identity,
        HTTP_PORT: String(port),
        POLL_INTERVAL: '1s',
      },
      { httpPort: port, waitFor: 'readyz' },
    );
    const operator = { identity, port, service };
    operators.push(operator);
    return operator;
  }

  async function leaderGauge(operator: Operator): Promise<number | undefined> {
    try {
      const text = await (await fetch(`http://127.0.0.1:${operator.port}/metrics`)).text();
      const match = /^kasho_operator_leader (\S+)$/m.exec(text);
      return match ? Number(match[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  const holder = async () =>
    (
      await rig.kubeConfig
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ namespace, name: 'kasho-operator' })
        .catch(() => undefined)
    )?.spec?.holderIdentity;

  async function waitForLeader(candidates: Operator[]): Promise<Operator> {
    return eventually(
      'one leader',
      async () => {
        const identity = await holder();
        const leader = candidates.find((o) => o.identity === identity);
        return leader && (await leaderGauge(leader)) === 1 ? leader : undefined;
      },
      60_000,
    );
  }

  before(async function () {
    this.timeout(30 * 60_000);
    await buildKubeTools();
    rig = await startRig();
    namespace = await createNamespace(rig, 'leader');
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      for (const { identity, service } of operators)
        console.log(`----- ${identity} -----\n${service.output()}`);
    }
  });

  after(async function () {
    await Promise.all(operators.map((o) => o.service.stop()));
    await rig?.server.stop();
  });

  it('elects exactly one leader, and only the leader acts', async function () {
    const [a, b] = await Promise.all([startOperator('op-a'), startOperator('op-b')]);
    const leader = await waitForLeader([a!, b!]);
    const standby = leader === a ? b! : a!;
    expect(await leaderGauge(standby)).to.equal(0);

    await createPipeline(rig, namespace, 'orders', {
      source: { secretName: 'missing' },
      target: { secretName: 'missing', urlKey: 'url' },
      transforms: { inline: 'version: v1\ntables: {}\n' },
    });
    await waitForStatus(rig, namespace, 'orders', 'phase Pending', (s) => s.phase === 'Pending');
    const recorded = await events(rig, namespace, 'orders');
    expect(recorded.length).to.be.greaterThan(0);
    expect(new Set(recorded.map((e) => e.reportingInstance))).to.deep.equal(new Set([leader.identity]));
    expect(await leaderGauge(standby)).to.equal(0);
  });

  it('hands over at once when the leader stops, and after the Lease expires when it dies', async function () {
    const first = await waitForLeader(operators);
    expect(await first.service.stop()).to.equal(0);
    const second = await waitForLeader(operators.filter((o) => o !== first));
    await patchPipeline(rig, namespace, 'orders', { spec: { publication: 'second_pub' } });
    await waitForStatus(rig, namespace, 'orders', 'generation 2 seen', (s) => s.observedGeneration === 2);

    const third = await startOperator('op-c');
    expect(await leaderGauge(third)).to.equal(0);
    await second.service.kill9();
    const successor = await waitForLeader([third]);
    expect(successor.identity).to.equal('op-c');
    await patchPipeline(rig, namespace, 'orders', { spec: { publication: 'third_pub' } });
    await waitForStatus(rig, namespace, 'orders', 'generation 3 seen', (s) => s.observedGeneration === 3);
    const instances = new Set((await events(rig, namespace, 'orders')).map((e) => e.reportingInstance));
    expect([...instances].every((i) => ['op-a', 'op-b', 'op-c'].includes(i ?? ''))).to.equal(true);
  });
});
