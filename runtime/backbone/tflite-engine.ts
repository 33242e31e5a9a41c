// TFLite engine: TensorFlow Lite's WASM builds from @tensorflow/tfjs-tflite, loaded directly. The
// package's JS loader assumes a browser, but its Emscripten modules load in Node when handed the wasm.
// One thread per session uses the SIMD build; more use the SIMD+threads build, whose pthreads run on
// worker_threads (tflite-threads.ts). The runner does not expose quantization, so scale and zero point
// are read from the model's flatbuffer (runtime/models/tflite-file.ts).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ModelError } from '../../core/errors.js';
import type { ModelManifest } from '../models/manifest.js';
import { type TfliteModel, findTensor, readTfliteModel } from '../models/tflite-file.js';
import type { EngineFactory, EngineOptions, EngineSession } from './engine.js';
import { dequantizeInto } from './dequantize.js';
import { installPthreadGlobals, unrefPthreads } from './tflite-threads.js';

interface WasmTensor {
  id: number;
  name: string;
  dataType: string;
  shape: string;
  data(): Uint8Array | Int8Array | Float32Array;
  delete(): void;
}

interface WasmVector {
  size(): number;
  get(i: number): WasmTensor;
  delete(): void;
}

interface WasmRunner {
  GetInputs(): WasmVector;
  GetOutputs(): WasmVector;
  Infer(): boolean;
  delete(): void;
}

interface WasmModule {
  HEAPU8: Uint8Array;
  /** The threaded build's shared memory (its HEAPU8 can go stale when a pthread grows it). */
  wasmMemory?: { buffer: ArrayBufferLike };
  _malloc(n: number): number;
  _free(ptr: number): void;
  TFLiteWebModelRunner: {
    CreateFromBufferAndOptions(
      ptr: number,
      length: number,
      options: { numThreads: number; enableProfiling: boolean; maxProfilingBufferEntries: number },
    ): { ok(): boolean; errorMessage(): string; value(): WasmRunner; delete(): void };
  };
}

type ModuleFactory = (options: {
  wasmBinary?: Uint8Array;
  locateFile?: (path: string) => string;
  mainScriptUrlOrBlob?: string;
  INITIAL_MEMORY?: number;
  wasmMemory?: WebAssembly.Memory;
  instantiateWasm?: (
    imports: WebAssembly.Imports,
    receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
  ) => Record<string, never>;
  print(text: string): void;
  printErr(text: string): void;
}) => Promise<WasmModule>;

const require = createRequire(import.meta.url);
let simdModule: Promise<WasmModule> | undefined;

function wasmDir(): string {
  return join(dirname(require.resolve('@tensorflow/tfjs-tflite/package.json')), 'wasm');
}

const SIMD_WASM = 'tflite_web_api_cc_simd.wasm';

/** Compiles the SIMD build once; a compiled module can be sent to worker threads, which share its code. */
export function compileTfliteWasm(): Promise<WebAssembly.Module> {
  return WebAssembly.compile(readFileSync(join(wasmDir(), SIMD_WASM)));
}

/** One SIMD module instance per thread: it serves every session in that thread. */
function loadSimdModule(compiled?: WebAssembly.Module): Promise<WasmModule> {
  simdModule ??= (async () => {
    const dir = wasmDir();
    const factory = require(join(dir, 'tflite_web_api_cc_simd.js')) as ModuleFactory;
    return factory({
      ...(compiled
        ? {
            instantiateWasm: (imports, receive) => {
              void WebAssembly.instantiate(compiled, imports).then((instance) => receive(instance, compiled));
              return {};
            },
          }
        : { wasmBinary: readFileSync(join(dir, SIMD_WASM)) }),
      // TFLite chats on stdout ("INFO: Created ... XNNPACK delegate"); keep stdout for our output.
      print: () => {},
      printErr: (text) => {
        if (!text.startsWith('INFO:')) process.stderr.write(`tflite: ${text}\n`);
      },
    });
  })();
  return simdModule;
}

const threadedModules = new Map<number, Promise<WasmModule>>();
const THREADED_JS = 'tflite_web_api_cc_simd_threaded.js';
/** Reserved up front so the heap never grows under a running pthread (sharing memory is lazy: untouched
 * pages cost nothing). */
const THREADED_INITIAL_MEMORY = 256 * 2 ** 20;

/**
 * The SIMD+threads build with a pthread pool of exactly `threads` workers. The stock build starts 8
 * (a thread and a V8 isolate each, whatever the model asks for), so the pool size is set in its source.
 */
function loadThreadedModule(threads: number): Promise<WasmModule> {
  let loaded = threadedModules.get(threads);
  if (!loaded) {
    loaded = (async () => {
      installPthreadGlobals();
      const dir = wasmDir();
      const source = readFileSync(join(dir, THREADED_JS), 'utf8');
      const pool = 'var pthreadPoolSize=8';
      if (!source.includes(pool))
        throw new ModelError('ENGINE_UNSUPPORTED', `${THREADED_JS}: no pthread pool size to set; this tfjs-tflite build is not supported`);
      const factory = new Function(
        `${source.replace(pool, `var pthreadPoolSize=${threads}`)}\nreturn tflite_web_api_ModuleFactory;`,
      )() as ModuleFactory;
      // Our own handle on the shared memory: fresh views of it are always current.
      const wasmMemory = new WebAssembly.Memory({ initial: THREADED_INITIAL_MEMORY / 65536, maximum: 32768, shared: true });
      const module = await factory({
        wasmBinary: readFileSync(join(dir, 'tflite_web_api_cc_simd_threaded.wasm')),
        locateFile: (path) => join(dir, path),
        mainScriptUrlOrBlob: join(dir, THREADED_JS),
        INITIAL_MEMORY: THREADED_INITIAL_MEMORY,
        wasmMemory,
        print: () => {},
        // Emscripten warns browsers against blocking their main thread; a Node thread may block.
        printErr: (text) => {
          if (!text.startsWith('INFO:') && !text.startsWith('Blocking on the main thread')) process.stderr.write(`tflite: ${text}\n`);
        },
      });
      module.wasmMemory = wasmMemory;
      unrefPthreads();
      return module;
    })();
    threadedModules.set(threads, loaded);
  }
  return loaded;
}

const DTYPE_NAMES = { uint8: 'uint8', int8: 'int8', float32: 'float32' } as const;

export const createTfliteSession: EngineFactory = async (modelBytes, manifest, options) => {
  // Parse first: a damaged file gets a precise error before the interpreter sees it.
  const file = readTfliteModel(modelBytes, manifest.file);
  const threads = Math.max(1, options.threads);
  const module =
    threads > 1
      ? await loadThreadedModule(threads)
      : await loadSimdModule(options.prepared instanceof WebAssembly.Module ? options.prepared : undefined);
  const pointer = module._malloc(modelBytes.length);
  new Uint8Array(module.wasmMemory?.buffer ?? module.HEAPU8.buffer).set(modelBytes, pointer);
  const status = module.TFLiteWebModelRunner.CreateFromBufferAndOptions(pointer, modelBytes.length, {
    numThreads: threads,
    enableProfiling: false,
    maxProfilingBufferEntries: 1024,
  });
  if (!status.ok()) {
    const message = status.errorMessage();
    status.delete();
    module._free(pointer);
    throw new ModelError('MODEL_INVALID', `${manifest.file}: TFLite cannot load the model: ${message}`);
  }
  const runner = status.value();
  status.delete();
  try {
    return new TfliteSession(module, runner, pointer, manifest, file, options);
  } catch (err) {
    runner.delete();
    module._free(pointer);
    throw err;
  }
};

class TfliteSession implements EngineSession {
  readonly outputDim: number;
  private readonly inputIndex = 0;
  private readonly outputIndex: number;
  private readonly quantization: { scale: number; zeroPoint: number } | undefined;
  private closed = false;

  constructor(
    private readonly module: WasmModule,
    private readonly runner: WasmRunner,
    private readonly pointer: number,
    private readonly manifest: ModelManifest,
    file: TfliteModel,
    options: EngineOptions,
  ) {
    const where = manifest.file;
    const inputs = tensors(runner.GetInputs());
    const input = inputs[0];
    if (!input) throw new ModelError('INPUT_NOT_FOUND', `${where}: the model has no input tensor`);
    const expectedShape = [1, manifest.input.height, manifest.input.width, 3].join(',');
    if (input.dataType !== DTYPE_NAMES[manifest.input.dtype] || input.shape !== expectedShape || manifest.input.layout !== 'NHWC') {
      throw new ModelError(
        'INPUT_MISMATCH',
        `${where}: input "${input.name}" is ${input.dataType} [${input.shape}], the manifest says ${manifest.input.dtype} [${expectedShape}] ${manifest.input.layout}`,
      );
    }
    const outputs = tensors(runner.GetOutputs());
    const outputName = options.outputName ?? manifest.output.name;
    this.outputIndex = outputs.findIndex((t) => t.name === outputName);
    const output = outputs[this.outputIndex];
    if (!output) {
      throw new ModelError(
        'OUTPUT_NOT_FOUND',
        `${where}: no output tensor "${outputName}"; outputs: ${outputs.map((t) => t.name).join(', ')}`,
      );
    }
    const dims = output.shape.split(',').map(Number);
    this.outputDim = dims.slice(1).reduce((a, b) => a * b, 1);
    if (this.outputDim !== manifest.output.dim && options.outputName === undefined) {
      throw new ModelError(
        'OUTPUT_MISMATCH',
        `${where}: output "${outputName}" has ${this.outputDim} values, the manifest says ${manifest.output.dim}`,
      );
    }
    const q = findTensor(file, outputName)?.quantization;
    if (q && q.scale.length !== 1) {
      throw new ModelError('OUTPUT_MISMATCH', `${where}: output "${outputName}" is quantized per channel; expected one scale`);
    }
    this.quantization = q ? { scale: q.scale[0]!, zeroPoint: q.zeroPoint[0] ?? 0 } : undefined;
  }

  run(input: Uint8Array | Int8Array | Float32Array, count: number): Float32Array {
    if (this.closed) throw new ModelError('SESSION_CLOSED', `${this.manifest.file}: session is closed`);
    const perImage = this.manifest.input.width * this.manifest.input.height * 3;
    const out = new Float32Array(count * this.outputDim);
    for (let i = 0; i < count; i++) {
      const inputs = this.runner.GetInputs();
      const tensor = inputs.get(this.inputIndex);
      // data() is a fresh view into the WASM heap: write through it, read results out of it at once.
      tensor.data().set(input.subarray(i * perImage, (i + 1) * perImage));
      tensor.delete();
      inputs.delete();
      if (!this.runner.Infer()) throw new ModelError('INFERENCE_FAILED', `${this.manifest.file}: TFLite inference failed`);
      const outputs = this.runner.GetOutputs();
      const output = outputs.get(this.outputIndex);
      dequantizeInto(output.data(), this.quantization, out, i * this.outputDim);
      output.delete();
      outputs.delete();
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.runner.delete();
    this.module._free(this.pointer);
  }
}

function tensors(vector: WasmVector): { name: string; dataType: string; shape: string }[] {
  const list = Array.from({ length: vector.size() }, (_, i) => {
    const t = vector.get(i);
    const info = { name: t.name, dataType: t.dataType, shape: String(t.shape) };
    t.delete();
    return info;
  });
  vector.delete();
  return list;
}
