// Worker-thread side of the backbone pool: owns one engine session and answers batches.
// Messages: in {type:'run', id, input, count}; out {type:'ready'|'result'|'error', ...}.

import { parentPort, workerData } from 'node:worker_threads';
import type { EngineName, EngineOptions, EngineSession } from './engine.js';
import { loadEngine } from './engines.js';
import type { ModelManifest } from '../models/manifest.js';
import { serializeError } from './wire.js';

export interface WorkerInit {
  engine: EngineName;
  modelBytes: Uint8Array;
  manifest: ModelManifest;
  options: EngineOptions;
}

export interface RunRequest {
  type: 'run';
  id: number;
  input: Uint8Array | Int8Array | Float32Array;
  count: number;
}

const port = parentPort!;
const init = workerData as WorkerInit;
let session: EngineSession | undefined;

try {
  const factory = await loadEngine(init.engine);
  session = await factory(init.modelBytes, init.manifest, init.options);
  port.postMessage({ type: 'ready', outputDim: session.outputDim });
} catch (err) {
  port.postMessage({ type: 'error', id: -1, error: serializeError(err) });
}

port.on('message', async (message: RunRequest | { type: 'close' }) => {
  if (message.type === 'close') {
    session?.close();
    session = undefined;
    port.close();
    return;
  }
  try {
    if (!session) throw new Error('engine session is not open');
    const output = await session.run(message.input, message.count);
    // The input goes back too: the pool reuses it, and this isolate, which makes almost no garbage and
    // so rarely collects, does not sit on a batch buffer per call until its external-memory limit.
    port.postMessage({ type: 'result', id: message.id, output, input: message.input }, [
      output.buffer as ArrayBuffer,
      message.input.buffer as ArrayBuffer,
    ]);
  } catch (err) {
    port.postMessage({ type: 'error', id: message.id, error: serializeError(err), input: message.input }, [
      message.input.buffer as ArrayBuffer,
    ]);
  }
});
