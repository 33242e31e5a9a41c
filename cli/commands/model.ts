// `edgetune model import`: TFLite models to ONNX, so they run on onnxruntime's fused int8 kernels.

import type { Command } from 'commander';
import { Option } from 'commander';
import { readFile } from 'node:fs/promises';
import { importModelFile } from '../../quantize/import-model.js';
import { modelInfo } from '../../quantize/model-info.js';
import { findModelFile } from '../../runtime/models/resolve.js';
import { ModelError } from '../../core/errors.js';
import { quantizeModelFile } from '../../quantize/quantize-model.js';
import { PTQ_DEFAULTS } from '../../quantize/ptq.js';
import { positiveInt } from '../number-options.js';
import { UsageError, formatTable, printJson } from '../output.js';
import { startProgress } from '../progress.js';

export function registerQuantize(program: Command): void {
  program
    .command('quantize')
    .description('static int8 post-training quantization of a float ONNX model, calibrated on your own photos')
    .argument('<model>', 'float ONNX model with its manifest beside it (e.g. from "edgetune model import --float")')
    .requiredOption('--calibrate <dir>', 'folder of photos to calibrate on (sub-folders too): on-site samples are best')
    .requiredOption('-o, --out <file.onnx>', 'int8 ONNX file to write (its manifest goes to <file.onnx>.json)')
    .addOption(
      new Option('--calibrator <name>', 'how activation ranges are chosen')
        .choices(['minmax', 'percentile'])
        .default(PTQ_DEFAULTS.calibrator),
    )
    .option('--percentile <p>', 'percentile calibrator: share of values kept in range', parseFloat, PTQ_DEFAULTS.percentile)
    .option('--no-bias-correction', 'keep the float biases (by default each conv bias absorbs the mean shift of its rounded weights)')
    .option('--images <n>', 'calibration images to use (picked at random, seeded)', positiveInt('--images'), 100)
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Weights become symmetric per-channel int8, activations uint8, biases int32 (QDQ format, which
onnxruntime fuses into QLinearConv); each bias is corrected for the mean shift of its rounded weights. The report gives each quantized tensor's error relative to the
float model and the cosine between the two models' outputs.

Example:
  edgetune model import mobilenet_v1_1.0_224_quant_embedding_extractor --float -o v1-float.onnx
  edgetune quantize v1-float.onnx --calibrate ./site-photos -o v1-int8.onnx`,
    )
    .action(
      async (
        ref: string,
        flags: {
          calibrate: string;
          out: string;
          calibrator: 'minmax' | 'percentile';
          percentile: number;
          biasCorrection: boolean;
          images: number;
          json?: boolean;
        },
      ) => {
        if (!(flags.percentile > 0.5 && flags.percentile <= 1)) throw new UsageError('--percentile must be in (0.5, 1]');
        let progress: ReturnType<typeof startProgress> | undefined;
        let phase = '';
        const result = await quantizeModelFile(ref, flags.calibrate, flags.out, {
          calibrator: flags.calibrator,
          percentile: flags.percentile,
          biasCorrection: flags.biasCorrection,
          images: flags.images,
          onProgress: (done, total, name) => {
            if (name !== phase) {
              progress?.stop();
              phase = name;
              progress = startProgress(name, total, { quiet: Boolean(flags.json) });
            }
            progress?.update(done);
          },
        });
        progress?.stop();
        if (flags.json) return printJson(result);
        for (const s of result.skippedImages) process.stderr.write(`skipped ${s.file}: ${s.error}\n`);
        process.stdout.write(
          `${formatTable(
            ['tensor', 'range', 'relative error'],
            result.layers.map((l) => [l.tensor, `${l.range[0].toFixed(3)} .. ${l.range[1].toFixed(3)}`, l.relativeError.toFixed(4)]),
          )}\n\n${result.manifest.id}: ${result.quantizedConvs} convolutions int8, ${result.calibrationImages} calibration images, output cosine to the float model ${result.outputCosine.toFixed(4)}, ${result.seconds.toFixed(1)} s\nwritten ${result.path}, ${result.manifestPath}\n`,
        );
      },
    );
}

export function registerModel(program: Command): void {
  const model = program
    .command('model')
    .description('model tooling: inspect models, import TFLite models to ONNX')
    .addHelpText(
      'after',
      '\nExamples:\n  edgetune model info mobilenet_v2_1.0_224_quant.tflite\n  edgetune model import mobilenet_v2_1.0_224_quant -o v2.onnx --output MobilenetV2/Logits/AvgPool',
    );
  model
    .command('info')
    .description('inputs, outputs, operators, parameters, multiply-accumulates and quantization of a model file')
    .argument('<file>', '.onnx or .tflite model file')
    .option('--tensors', 'also list every computed tensor with its shape: the cut points --output takes')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  edgetune model info ../shared/models/mobilenet_v2_1.0_224_quant.tflite\n  edgetune model info --tensors mobilenet_v2_1.0_224_quant.tflite',
    )
    .action(async (ref: string, flags: { json?: boolean; tensors?: boolean }) => {
      const file = findModelFile(ref);
      const bytes = await readFile(file).catch((err: Error) => {
        throw new ModelError('MODEL_NOT_FOUND', `${file}: cannot read model: ${err.message}`);
      });
      const { tensors, ...summary } = modelInfo(new Uint8Array(bytes), file);
      const info = flags.tensors ? { ...summary, tensors } : summary;
      if (flags.json) return printJson(info, { exact: true });
      const tensor = (t: { name: string; type: string; shape: (number | string)[] }) => `${t.name} ${t.type} [${t.shape.join(', ')}]`;
      const rows: [string, string][] = [
        ['format', info.format],
        ...info.inputs.map((t): [string, string] => ['input', tensor(t)]),
        ...info.outputs.map((t): [string, string] => ['output', tensor(t)]),
        [
          'operators',
          Object.entries(info.ops)
            .sort((a, b) => b[1] - a[1])
            .map(([op, n]) => `${op} ${n}`)
            .join(', '),
        ],
        ['parameters', info.parameters.toLocaleString('en-US')],
        ['MACs / image', info.macs === null ? 'unknown' : `${(info.macs / 1e6).toFixed(1)} M`],
        ['quantization', info.quantization],
        ...(flags.tensors ? tensors.map((t): [string, string] => ['tensor', tensor(t)]) : []),
      ];
      process.stdout.write(`${formatTable(['', ''], rows)}\n`);
    });
  model
    .command('import')
    .description('convert a TFLite model to ONNX (int8 kept as QuantizeLinear/DequantizeLinear) and write its manifest beside it')
    .argument('<model>', 'TFLite model: catalog id or file')
    .requiredOption('-o, --out <file.onnx>', 'ONNX file to write (its manifest goes to <file.onnx>.json)')
    .option('--output <tensor>', "cut the graph at this tensor: it becomes the embedding (e.g. a classifier's pre-logits)")
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
        [
          'operators',
          Object.entries(imported.ops)
            .map(([op, n]) => `${op} ${n}`)
            .join(', '),
        ],
        ['written', `${imported.path} (${manifest.bytes} bytes), ${imported.manifestPath}`],
        ['took', `${Math.round(imported.importMs)} ms`],
      ];
      process.stdout.write(`${formatTable(['', ''], rows)}\n`);
    });
}
