import { expect } from 'chai';
import { BootstrapState, type GetStatusResponse } from '@kasho/common';
import {
  describeGrpcError,
  isTransientGrpcError,
  parsePrometheusText,
  toChangeStreamStatus,
  toTranslicatorMetrics,
  withTimeout,
} from '../../../src/controller/dependencies.js';
import { observeJob } from '../../../src/controller/kube.js';

const METRICS = `# HELP kasho_translicator_lag_seconds Time since the source committed the last applied transaction
# TYPE kasho_translicator_lag_seconds gauge
kasho_translicator_lag_seconds 0.75
kasho_translicator_lag_bytes 1234
kasho_translicator_applied_lsn 26214400
kasho_translicator_rows_total{kind="insert"} 10
`;

describe('reading the services', function () {
  it("reads the translicator's lag and applied LSN from its Prometheus text", function () {
    const samples = parsePrometheusText(METRICS);
    expect(samples.get('kasho_translicator_lag_seconds')).to.equal(0.75);
    expect(samples.has('kasho_translicator_rows_total')).to.equal(false);
    expect(toTranslicatorMetrics(samples)).to.deep.equal({
      lagSeconds: 0.75,
      lagBytes: 1234,
      appliedLsn: '0/1900000',
    });
    expect(toTranslicatorMetrics(new Map([['kasho_translicator_applied_lsn', 0]]))).to.deep.equal({});
  });

  it("turns GetStatus into the operator's terms", function () {
    const response: GetStatusResponse = {
      state: BootstrapState.STREAMING,
      slotName: 'kasho_slot',
      publicationName: 'kasho_pub',
      startLsn: '0/1000',
      receivedLsn: '0/3000',
      confirmedLsn: '0/2000',
      accumulatedChanges: 4n,
      bufferedChanges: 0n,
      bootstrapChanges: 300n,
      connectedClients: 1,
      uptimeSeconds: 9n,
      retainedWalBytes: 8192n,
      acknowledgedPosition: { lsn: 0x2000n, seq: 3n },
      snapshotName: '',
      snapshotHeld: false,
      serverVersion: '17',
      epoch: 'e1',
      lastError: '',
    };
    expect(toChangeStreamStatus(response)).to.deep.equal({
      state: 'STREAMING',
      slotName: 'kasho_slot',
      startLsn: '0/1000',
      receivedLsn: '0/3000',
      confirmedLsn: '0/2000',
      acknowledgedLsn: '0/2000',
      accumulatedChanges: 4,
      bootstrapChanges: 300,
      retainedWalBytes: 8192,
      epoch: 'e1',
      lastError: '',
    });
    expect(
      toChangeStreamStatus({ ...response, state: BootstrapState.BOOTSTRAP_STATE_UNSPECIFIED }).state,
    ).to.equal('UNKNOWN');
  });

  it('describes gRPC failures without passwords, and knows which are worth waiting out', async function () {
    expect(
      describeGrpcError({ code: 14, details: 'No connection established. Last error: x. Resolution note: ' }),
    ).to.equal('No connection established. Last error: x');
    expect(describeGrpcError(new Error('redis://:hunter2@cache:6379 refused'))).to.equal(
      'redis://:***@cache:6379 refused',
    );
    expect(isTransientGrpcError({ code: 14 })).to.equal(true);
    expect(isTransientGrpcError({ code: 9 })).to.equal(false);
    const timedOut = await withTimeout(new Promise(() => undefined), 10, 'GetStatus').catch(
      (error: unknown) => error,
    );
    expect(isTransientGrpcError(timedOut)).to.equal(true);
    expect((timedOut as Error).message).to.equal('GetStatus timed out after 10 ms');
  });

  it("takes a Job's outcome only from its terminal condition", function () {
    const base = { metadata: { name: 'j', annotations: { 'kasho.io/spec-hash': 'h' } } };
    expect(
      observeJob({ ...base, status: { failed: 2, startTime: new Date('2026-11-25T00:00:00Z') } }),
    ).to.deep.equal({
      name: 'j',
      phase: 'Running',
      startTime: '2026-11-25T00:00:00.000Z',
      specHash: 'h',
    });
    const failed = observeJob({
      ...base,
      status: {
        conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'm' }],
      },
    });
    expect(failed).to.deep.include({ phase: 'Failed', reason: 'BackoffLimitExceeded', message: 'm' });
    const done = observeJob({ ...base, status: { conditions: [{ type: 'Complete', status: 'True' }] } });
    expect(done.phase).to.equal('Succeeded');
  });
});
