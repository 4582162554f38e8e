import { expect } from 'chai';
import { decide } from '../../../src/reconcile/decide.js';
import type { Observed } from '../../../src/reconcile/observed.js';
import { applyOutcome } from '../../../src/reconcile/outcome.js';
import { NOW, baseSpec, csStatus, job, observed, pipeline, preparedStatus } from '../fixtures.js';

function completing(annotated: boolean): Observed {
  return observed(
    pipeline(baseSpec({ bootstrap: { autoComplete: !annotated } }), {
      status: preparedStatus(),
      ...(annotated ? { annotations: { 'kasho.io/complete-bootstrap': 'true' } } : {}),
    }),
    {
      changeStream: { reachable: true, status: csStatus('ACCUMULATING') },
      bootstrapJob: job('orders-bootstrap', 'Succeeded'),
    },
  );
}

describe("folding an action's result into the status", function () {
  it('a completed bootstrap: Bootstrapped, recorded who completed it, an event, and the annotation removed', function () {
    const world = completing(true);
    const plan = applyOutcome(world, decide(world), { ok: true });
    expect(plan.status.bootstrap).to.deep.include({
      completedAt: NOW.toISOString(),
      completedBy: 'annotation',
      rows: 300,
    });
    expect(plan.status.changeStreamState).to.equal('STREAMING');
    expect(plan.status.conditions?.find((c) => c.type === 'Bootstrapped')).to.deep.include({
      status: 'True',
      reason: 'Completed',
    });
    expect(plan.removeAnnotations).to.deep.equal(['kasho.io/complete-bootstrap']);
    expect(plan.events.filter((e) => e.reason === 'BootstrapCompleted')).to.have.length(1);
    expect(plan.requeueAfterMs).to.be.a('number');
  });

  it('autoComplete leaves annotations alone', function () {
    const world = completing(false);
    const plan = applyOutcome(world, decide(world), { ok: true });
    expect(plan.status.bootstrap?.completedBy).to.equal('autoComplete');
    expect(plan.removeAnnotations).to.deep.equal([]);
  });

  it('an unreachable change-stream keeps the annotation for the next try; a refusal consumes it', function () {
    const world = completing(true);
    const transient = applyOutcome(world, decide(world), {
      ok: false,
      error: 'UNAVAILABLE',
      transient: true,
    });
    expect(transient.removeAnnotations).to.deep.equal([]);
    expect(transient.status.lastError).to.equal('CompleteBootstrap failed: UNAVAILABLE');
    expect(transient.events).to.deep.include({
      type: 'Warning',
      reason: 'CompleteBootstrapFailed',
      message: 'CompleteBootstrap failed: UNAVAILABLE',
    });
    const refused = applyOutcome(world, decide(world), {
      ok: false,
      error: 'not ACCUMULATING',
      transient: false,
    });
    expect(refused.removeAnnotations).to.deep.equal(['kasho.io/complete-bootstrap']);
  });

  it('a reset clears the bootstrap record and says it runs again', function () {
    const world = observed(
      pipeline(baseSpec(), {
        status: {
          ...preparedStatus({ bootstrapped: true }),
          bootstrap: { rows: 5, completedBy: 'autoComplete' },
        },
        annotations: { 'kasho.io/reset-bootstrap': 'true' },
      }),
      { changeStream: { reachable: true, status: csStatus('STREAMING') } },
    );
    const plan = applyOutcome(world, decide(world), { ok: true });
    expect(plan.status.bootstrap).to.equal(undefined);
    expect(plan.status.conditions?.find((c) => c.type === 'Bootstrapped')).to.deep.include({
      status: 'False',
      reason: 'Reset',
    });
    expect(plan.removeAnnotations).to.deep.equal(['kasho.io/reset-bootstrap']);
    expect(plan.events.map((e) => e.reason)).to.include('BootstrapReset');
  });

  it('a failed cleanup counts the attempt, backs off, and after five names the annotation that lets go', function () {
    const attempt = (attempts: number) => {
      const world = observed(
        pipeline(baseSpec(), {
          deleting: true,
          status: attempts ? { cleanup: { attempts, lastAttemptAt: '2026-11-25T09:00:00.000Z' } } : {},
        }),
      );
      return applyOutcome(world, decide(world), { ok: false, error: 'connection refused', transient: false });
    };
    const first = attempt(0);
    expect(first.status.cleanup).to.deep.equal({
      attempts: 1,
      lastAttemptAt: NOW.toISOString(),
      lastError: 'connection refused',
    });
    expect(first.removeFinalizer).to.equal(false);
    expect(first.requeueAfterMs).to.equal(1000);
    expect(first.events[0]?.message).to.not.contain('skip-source-cleanup');
    const fifth = attempt(4);
    expect(fifth.requeueAfterMs).to.equal(16_000);
    expect(fifth.events[0]?.message).to.contain(
      'kubectl annotate kp orders -n data kasho.io/skip-source-cleanup=true',
    );
  });

  it('a successful cleanup lets the deletion finish', function () {
    const world = observed(pipeline(baseSpec(), { deleting: true }));
    const plan = applyOutcome(world, decide(world), { ok: true });
    expect(plan.removeFinalizer).to.equal(true);
    expect(plan.events).to.deep.include({
      type: 'Normal',
      reason: 'SourceCleaned',
      message: 'Dropped slot kasho_slot and publication kasho_pub on the source',
    });
  });
});
