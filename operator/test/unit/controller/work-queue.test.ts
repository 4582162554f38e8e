import { expect } from 'chai';
import { WorkQueue } from '../../../src/controller/work-queue.js';

describe('the rate-limited work queue', function () {
  it('holds a key once however often it is added, in order of first addition', async function () {
    const queue = new WorkQueue();
    for (const key of ['a', 'b', 'a', 'c', 'b']) queue.add(key);
    expect(queue.length).to.equal(3);
    expect([await queue.get(), await queue.get(), await queue.get()]).to.deep.equal(['a', 'b', 'c']);
  });

  it('never hands a key being processed to a second worker; added meanwhile, it comes back after done()', async function () {
    const queue = new WorkQueue();
    queue.add('a');
    expect(await queue.get()).to.equal('a');
    queue.add('a');
    queue.add('b');
    expect(await queue.get()).to.equal('b');
    expect(queue.length).to.equal(0);
    queue.done('a');
    expect(await queue.get()).to.equal('a');
  });

  it('wakes a waiting worker when a key arrives', async function () {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.add('x');
    expect(await waiting).to.equal('x');
  });

  it('backs off exponentially per key up to the maximum, and forget() starts over', function () {
    const queue = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000 });
    const delays = [1, 2, 3, 4, 5, 6].map(() => queue.addRateLimited('a'));
    expect(delays).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
    expect(queue.addRateLimited('b')).to.equal(100);
    expect(queue.failuresOf('a')).to.equal(6);
    queue.forget('a');
    expect(queue.addRateLimited('a')).to.equal(100);
    queue.shutDown();
  });

  it('keeps the earlier of two delayed additions of a key', async function () {
    const queue = new WorkQueue();
    queue.addAfter('a', 60_000);
    queue.addAfter('a', 1);
    expect(await queue.get()).to.equal('a');
    queue.shutDown();
  });

  it('releases waiting workers with undefined when it shuts down', async function () {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.shutDown();
    expect(await waiting).to.equal(undefined);
    queue.add('late');
    expect(await queue.get()).to.equal(undefined);
  });
});
