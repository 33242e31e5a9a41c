// What this process's platform can run, without loading any engine.

/** The two backbone engines: onnxruntime-node, or TFLite in WebAssembly. */
export type EngineName = 'tflite' | 'onnx';

/** onnxruntime-node ships CPU binaries for these platforms only (no 32-bit ARM). */
export function onnxRuntimeAvailable(platform: string = process.platform, arch: string = process.arch): boolean {
  return ['linux', 'darwin', 'win32'].includes(platform) && ['x64', 'arm64'].includes(arch);
}

/** The device bundle this process's CPU runs (deploy/bundle/targets.ts names them). */
export function bundleTargetOf(platform: string = process.platform, arch: string = process.arch): string {
  return `${platform}-${arch === 'arm' ? 'armv7' : arch}`;
}
