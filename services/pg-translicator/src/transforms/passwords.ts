import { pbkdf2Sync, scryptSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { TransformFailure } from './errors.js';

/**
 * Password hashes in the encodings applications verify: bcrypt's `$2b$`, the PHC strings of scrypt and
 * argon2id, and passlib's `$pbkdf2-sha256$`. The salt is passed in (derived from the keyed digest by the caller),
 * so re-applying a change gives the same hash.
 */
export interface PasswordAlgorithm {
  /** Identifies the algorithm and its parameters, for the cache. */
  readonly id: string;
  hash(cleartext: string, salt: Buffer): string;
}

export const SALT_BYTES = 16;

function b64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

/** passlib's "adapted base64": no padding, `.` instead of `+`. */
function ab64(bytes: Buffer): string {
  return b64(bytes).replace(/\+/g, '.');
}

type WasmRequest =
  | { algorithm: 'bcrypt'; password: Uint8Array; salt: Uint8Array; cost: number }
  | {
      algorithm: 'argon2id';
      password: string;
      salt: Uint8Array;
      time: number;
      memory: number;
      threads: number;
      hashLength: number;
    };

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { port, hashWasm } = workerData;
let wasm;
try { wasm = require(hashWasm); } catch (error) { wasm = undefined; }
port.on('message', async ({ request, signal }) => {
  let reply;
  try {
    if (!wasm) throw new Error('hash-wasm could not be loaded');
    const hash = request.algorithm === 'bcrypt'
      ? await wasm.bcrypt({ password: request.password, salt: request.salt, costFactor: request.cost, outputType: 'encoded' })
      : await wasm.argon2id({ password: request.password, salt: request.salt, iterations: request.time,
          memorySize: request.memory, parallelism: request.threads, hashLength: request.hashLength, outputType: 'encoded' });
    reply = { hash };
  } catch (error) {
    reply = { error: String(error && error.name) };
  }
  port.postMessage(reply);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
});
`;

const WASM_TIMEOUT_MS = 120000;

/**
 * hash-wasm's bcrypt and argon2id are asynchronous only (WebAssembly is instantiated asynchronously), while rows
 * are transformed synchronously. A worker runs them and the calling thread waits on a shared flag: the work is
 * CPU-bound either way, so blocking costs no throughput.
 */
class WasmHasher {
  private port: MessagePort | undefined;
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));

  hash(request: WasmRequest): string {
    const port = this.port ?? this.start();
    Atomics.store(this.signal, 0, 0);
    port.postMessage({ request, signal: this.signal });
    if (Atomics.wait(this.signal, 0, 0, WASM_TIMEOUT_MS) === 'timed-out') {
      throw new TransformFailure(
        `${request.algorithm} hashing did not finish within ${WASM_TIMEOUT_MS / 1000} s`,
      );
    }
    const reply = receiveMessageOnPort(port)?.message as { hash?: string; error?: string } | undefined;
    if (reply?.hash === undefined)
      throw new TransformFailure(`${request.algorithm} hashing failed (${reply?.error ?? 'no reply'})`);
    return reply.hash;
  }

  private start(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    const hashWasm = createRequire(import.meta.url).resolve('hash-wasm');
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { port: port2, hashWasm },
      transferList: [port2],
    });
    worker.unref();
    port1.unref();
    this.port = port1;
    return port1;
  }
}

let wasmHasher: WasmHasher | undefined;

function wasm(): WasmHasher {
  wasmHasher ??= new WasmHasher();
  return wasmHasher;
}

export function bcryptAlgorithm(cost: number, variant: string): PasswordAlgorithm {
  return {
    id: `bcrypt:${cost}:${variant}`,
    hash(cleartext, salt) {
      // bcrypt reads at most 72 bytes; hash-wasm refuses more instead of truncating.
      const password = Buffer.from(cleartext, 'utf8').subarray(0, 72);
      const encoded = wasm().hash({ algorithm: 'bcrypt', password, salt, cost });
      return encoded.replace(/^\$2[aby]\$/, `$${variant}$`);
    },
  };
}

export function argon2idAlgorithm(
  time: number,
  memory: number,
  threads: number,
  hashLength: number,
): PasswordAlgorithm {
  return {
    id: `argon2id:${time}:${memory}:${threads}:${hashLength}`,
    hash: (cleartext, salt) =>
      wasm().hash({ algorithm: 'argon2id', password: cleartext, salt, time, memory, threads, hashLength }),
  };
}

export function scryptAlgorithm(n: number, r: number, p: number, keyLength: number): PasswordAlgorithm {
  return {
    id: `scrypt:${n}:${r}:${p}:${keyLength}`,
    hash(cleartext, salt) {
      const key = scryptSync(cleartext, salt, keyLength, { N: n, r, p, maxmem: 256 * n * r * p + 1048576 });
      return `$scrypt$ln=${Math.log2(n)},r=${r},p=${p}$${b64(salt)}$${b64(key)}`;
    },
  };
}

const PBKDF2_IDENTS: Record<string, string> = {
  sha1: 'pbkdf2',
  sha256: 'pbkdf2-sha256',
  sha512: 'pbkdf2-sha512',
};
const DIGEST_BYTES: Record<string, number> = { sha1: 20, sha256: 32, sha512: 64 };

export function pbkdf2Algorithm(iterations: number, digest: string, keyLength?: number): PasswordAlgorithm {
  const hash = digest.toLowerCase();
  const length = keyLength ?? DIGEST_BYTES[hash] ?? 32;
  return {
    id: `pbkdf2:${iterations}:${hash}:${length}`,
    hash(cleartext, salt) {
      const key = pbkdf2Sync(cleartext, salt, iterations, length, hash);
      return `$${PBKDF2_IDENTS[hash] ?? hash}$${iterations}$${ab64(salt)}$${ab64(key)}`;
    },
  };
}

/**
 * Remembers recent hashes: with `use_salt: false` and a fixed cleartext every row needs the same hash, computed
 * once instead of once per row.
 */
export class PasswordCache {
  private readonly entries = new Map<string, string>();

  constructor(private readonly capacity = 10000) {}

  get(key: string, compute: () => string): string {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const value = compute();
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return value;
  }
}
