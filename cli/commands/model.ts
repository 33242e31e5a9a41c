// `edgetune model import`: TFLite models to ONNX, so they run on onnxruntime's fused int8 kernels.

import type { Command } from 'commander';
import { importModelFile } from '../../quantize/import-model.js';
import { formatTable, printJson } from '../output.js';

export function registerModel(program: Command): void {
  const model = program.command('model').description('model tooling: import TFLite models to ONNX');
  model
    .command('import')
    .description('convert a TFLite model to ONNX (int8 kept as QuantizeLinear/DequantizeLinear) and write its manifest beside it')
    .argument('<model>', 'TFLite model: catalog id or file')
    .requiredOption('-o, --out <file.onnx>', 'ONNX file to write (its manifest goes to <file.onnx>.json)')
    .option('--output <tensor>', 'cut the graph at this tensor: it becomes the embedding (e.g. a classifier\'s pre-logits)')
    .option('--float', 'write a dequantized float32 model instead of an int8 one')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
The ONNX model takes the same uint8 NHWC image as the TFLite one. A plain import keeps the model id, so
heads trained on one run on the other; --output and --float make a new id.

Examples:
  edgetune model import mobilenet_v1_1.0_224_quant_embedding_extractor -o v1.onnx
  edgetune model import mobilenet_v2_1.0_224_quant -o v2-prelogits.onnx --output MobilenetV2/Logits/AvgPool`,
    )
    .action(async (ref: string, flags: { out: string; output?: string; float?: boolean; json?: boolean }) => {
      const imported = await importModelFile(ref, flags.out, {
        ...(flags.output ? { output: flags.output } : {}),
        ...(flags.float ? { float: true } : {}),
      });
      const { manifest } = imported;
      if (flags.json) return printJson({ ...imported, importMs: Math.round(imported.importMs) });
      const rows: [string, string][] = [
        ['model', `${manifest.id} (${manifest.output.kind}, ${manifest.output.dim}-d)`],
        ['from tensor', imported.outputTensor],
        ['operators', Object.entries(imported.ops).map(([op, n]) => `${op} ${n}`).join(', ')],
        ['written', `${imported.path} (${manifest.bytes} bytes), ${imported.manifestPath}`],
        ['took', `${Math.round(imported.importMs)} ms`],
      ];
      process.stdout.write(`${formatTable(['', ''], rows)}\n`);
    });
}
