// The threaded TFLite WASM build is an Emscripten pthreads program written for browsers: its main side
// calls `new Worker(url)` and talks through `onmessage`/`postMessage`; its worker script expects `self`,
// `importScripts` and `postMessage`. Here a worker_threads Worker wears that shape. Its threads are
// unref'd, so an idle pthread pool never keeps the process alive.

import { availableParallelism } from 'node:os';
import { Worker as ThreadWorker } from 'node:worker_threads';
import { workerExecArgv } from './worker-argv.js';

// Runs inside each pthread: the browser globals the Emscripten worker script uses, then the script.
const PTHREAD_SHIM = `
const { parentPort, workerData } = require('node:worker_threads');
const vm = require('node:vm');
const fs = require('node:fs');
globalThis.self = globalThis;
globalThis.location = { href: require('node:url').pathToFileURL(workerData.script).href };
globalThis.navigator ??= { hardwareConcurrency: ${availableParallelism()} };
globalThis.postMessage = (data, transfer) => parentPort.postMessage(data, transfer);
globalThis.importScripts = (...files) => {
  for (const file of files) vm.runInThisContext(fs.readFileSync(file, 'utf8'), { filename: file });
};
parentPort.on('message', (data) => self.onmessage && self.onmessage({ data }));
importScripts(workerData.script);
`;

const started = new Set<PthreadWorker>();

/** A browser-style Worker on worker_threads, for Emscripten's pthread pool. */
export class PthreadWorker {
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onerror: ((error: unknown) => void) | null = null;
  private readonly thread: ThreadWorker;

  constructor(script: string | URL) {
    this.thread = new ThreadWorker(PTHREAD_SHIM, { eval: true, workerData: { script: String(script) }, execArgv: workerExecArgv() });
    this.thread.on('message', (data: unknown) => this.onmessage?.({ data }));
    this.thread.on('error', (error) => this.onerror?.(error));
    started.add(this);
  }

  /** Lets the process exit while the pool idles. */
  unref(): void {
    this.thread.unref();
  }

  postMessage(data: unknown, transfer?: readonly ArrayBuffer[]): void {
    this.thread.postMessage(data, transfer as never);
  }

  terminate(): void {
    void this.thread.terminate();
  }
}

/** Unrefs every pthread started so far: call once the module has loaded. */
export function unrefPthreads(): void {
  for (const worker of started) worker.unref();
  started.clear();
}

/** Makes `Worker` and `navigator` exist for the Emscripten module in this thread. */
export function installPthreadGlobals(): void {
  const g = globalThis as Record<string, unknown>;
  g.Worker ??= PthreadWorker;
  g.navigator ??= { hardwareConcurrency: availableParallelism() };
}
