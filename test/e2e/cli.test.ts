import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnEdgetune } from '../support/cli.js';
import { FLOWERS_DIR, IMAGES_DIR, modelPath, tempDir } from '../support/paths.js';

const tmp = tempDir();
const cacheDir = join(tmp.path, 'cache');
const small = join(tmp.path, 'small');
const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];

beforeAll(() => {
  // 16 photos per class, linked from flowers128: a quick real dataset.
  for (const c of CLASSES) {
    mkdirSync(join(small, c), { recursive: true });
    for (const f of readdirSync(join(FLOWERS_DIR, c)).sort().slice(0, 16)) symlinkSync(join(FLOWERS_DIR, c, f), join(small, c, f));
  }
});
afterAll(() => tmp.remove());

describe('edgetune CLI', () => {
  it('--help lists every verb, and each verb has its own help with an example', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const verb of ['models', 'embed', 'train', 'predict', 'eval', 'classify']) expect(top.stdout).toContain(verb);
    const evalHelp = await runCli(['eval', '--help']);
    expect(evalHelp.stdout).toMatch(/--shots <k>/);
    expect(evalHelp.stdout).toMatch(/Examples:/);
  });

  it('models lists the catalog as found in EDGETUNE_MODEL_DIR, verified', async () => {
    const r = await runCli(['models', '--json', '--cache-dir', cacheDir]);
    expect(r.code).toBe(0);
    const models = JSON.parse(r.stdout).models as { id: string; status: string; location: string }[];
    expect(models).toHaveLength(4);
    expect(models.every((m) => m.status === 'ok' && m.location === 'model-dir')).toBe(true);
  });

  it('classify gives the known top-1 labels for the three sample photos', async () => {
    const images = ['cat.bmp', 'grace_hopper.bmp', 'hot_dog.jpg'].map((f) => join(IMAGES_DIR, f));
    const r = await runCli(['classify', '--model', modelPath('mobilenet_v2_1.0_224_quant.tflite'), ...images, '--json']);
    expect(r.code).toBe(0);
    const results = JSON.parse(r.stdout).results as { top: { label: string; score: number }[] }[];
    expect(results.map((x) => x.top[0]!.label)).toEqual(['Egyptian cat', 'military uniform', 'hotdog']);
    expect(results.every((x) => x.top.length === 5)).toBe(true);
    // A bare file name that is not in the current folder is the file of that name in EDGETUNE_MODEL_DIR.
    const bare = await runCli(['classify', '--model', 'mobilenet_v2_1.0_224_quant.tflite', images[0]!, '--json']);
    expect(bare.code, bare.stderr).toBe(0);
    expect(JSON.parse(bare.stdout).results[0].top[0].label).toBe('Egyptian cat');
  });

  it('classify refuses an embedding model with a clear message', async () => {
    const r = await runCli(['classify', '--model', 'mobilenet_v1_1.0_224_quant_embedding_extractor', join(IMAGES_DIR, 'cat.bmp')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/gives embeddings, not class scores/);
  });

  it('train then predict: a head file that predicts the classes it learned', async () => {
    const head = join(tmp.path, 'flowers.head');
    const train = await runCli(['train', '--data', small, '-o', head, '--cache-dir', cacheDir, '--json']);
    expect(train.code, train.stderr).toBe(0);
    const summary = JSON.parse(train.stdout);
    expect(summary.labels).toEqual(CLASSES);
    expect(summary.counts).toEqual([16, 16, 16, 16, 16]);
    expect(summary.openSet).toMatchObject({ score: 'class-mean-cosine', unknownRate: 0.05, samples: 80 });
    // 80 photos: the softmax head chose its L2 from them.
    expect(summary.regularisation.chosenBy).toBe('cross-validation');
    expect([10, 3, 1, 0.3, 0.1]).toContain(summary.regularisation.l2);
    const photos = CLASSES.map((c) => join(small, c, readdirSync(join(small, c)).sort()[0]!));
    const predict = await runCli(['predict', '--head', head, ...photos, '--json', '--cache-dir', cacheDir]);
    expect(predict.code, predict.stderr).toBe(0);
    const results = JSON.parse(predict.stdout).results as { label: string; score: number }[];
    // Training photos: the head should get nearly all of them.
    expect(results.filter((r, i) => r.label === CLASSES[i]).length).toBeGreaterThanOrEqual(4);
    const unsure = await runCli(['predict', '--head', head, photos[0]!, '--threshold', '1', '--json', '--cache-dir', cacheDir]);
    expect(JSON.parse(unsure.stdout).results[0]).toMatchObject({ label: 'unknown', unknown: true });
    // Without --threshold the head's calibrated distance decides: a cat is not a flower.
    const cat = await runCli(['predict', '--head', head, join(IMAGES_DIR, 'cat.bmp'), photos[1]!, '--json', '--cache-dir', cacheDir]);
    const [forCat, forFlower] = JSON.parse(cat.stdout).results as {
      label: string;
      unknown: boolean;
      distance: number;
      distanceThreshold: number;
    }[];
    expect(forCat).toMatchObject({ label: 'unknown', unknown: true });
    expect(forCat!.distance).toBeGreaterThan(forCat!.distanceThreshold);
    expect(forFlower).toMatchObject({ label: CLASSES[1], unknown: false });
    expect(forFlower!.distance).toBeLessThanOrEqual(forFlower!.distanceThreshold);
  });

  it('eval prints accuracy, per-class recall and a confusion matrix; --json has a top-level accuracy', async () => {
    const text = await runCli(['eval', '--data', small, '--cache-dir', cacheDir]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/accuracy: \d+\.\d%/);
    expect(text.stdout).toMatch(/confusion matrix/);
    const json = JSON.parse((await runCli(['eval', '--data', small, '--cache-dir', cacheDir, '--json'])).stdout);
    expect(json.accuracy).toBeGreaterThan(0.4);
    expect(json.test).toBe(15); // round(16 x 0.2) = 3 per class
    expect(json.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(15);
    expect(json.perClass.map((c: { label: string }) => c.label)).toEqual(CLASSES);
  });

  it('eval --shots --repeats reports the mean over seeded runs', async () => {
    const r = await runCli(['eval', '--data', small, '--shots', '5', '--repeats', '3', '--cache-dir', cacheDir, '--json']);
    const json = JSON.parse(r.stdout);
    expect(json.repeats).toBe(3);
    expect(json.runs).toHaveLength(3);
    // JSON measurements carry 6 significant digits.
    expect(json.accuracy).toBeCloseTo(json.runs.reduce((a: number, b: number) => a + b, 0) / 3, 5);
    expect(json.train).toBe(25);
  });

  it('a batch with unreadable photos reports them and goes on', async () => {
    const bad = join(tmp.path, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'page.jpg'), '<html>not a photo</html>');
    writeFileSync(join(bad, 'empty.png'), '');
    const r = await runCli([
      'embed',
      join(bad, 'page.jpg'),
      join(IMAGES_DIR, 'hot_dog.jpg'),
      join(bad, 'empty.png'),
      '--json',
      '--cache-dir',
      cacheDir,
    ]);
    expect(r.code).toBe(1);
    const results = JSON.parse(r.stdout).results as { image: string; error?: string; embedding?: number[] }[];
    expect(results[0]!.error).toMatch(/page\.jpg: not a readable image/);
    expect(results[1]!.embedding).toHaveLength(1024);
    expect(results[2]!.error).toMatch(/empty\.png: file is empty/);
  });

  it('usage errors name the option and exit 2; missing data names the folder and exits 1', async () => {
    const shots = await runCli(['eval', '--data', small, '--shots', 'ten']);
    expect(shots.code).toBe(2);
    expect(shots.stderr).toMatch(/--shots must be a positive whole number, got "ten"/);
    const missing = await runCli(['eval', '--data', join(tmp.path, 'nowhere')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nowhere: not a folder/);
    const tooMany = await runCli(['eval', '--data', small, '--shots', '16', '--cache-dir', cacheDir]);
    expect(tooMany.stderr).toMatch(/--shots 16 needs more than 16 photos in every class \(have daisy 16/);
  });

  it('predict refuses a head trained on another backbone', async () => {
    const head = join(tmp.path, 'flowers.head');
    const r = await runCli(['predict', '--head', head, '--model', 'mobilenet_v1_0.25_128_quant', join(IMAGES_DIR, 'cat.bmp')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /head was trained on backbone "mobilenet_v1_1\.0_224_quant_embedding_extractor".*not "mobilenet_v1_0\.25_128_quant"/,
    );
  });

  it('ends quietly with 0 when its reader stops reading (| head)', async () => {
    // 3 MB of JSON: more than the pipe holds.
    const photos = readdirSync(join(FLOWERS_DIR, 'daisy'))
      .sort()
      .slice(0, 150)
      .map((f) => join(FLOWERS_DIR, 'daisy', f));
    const run = spawnEdgetune(['embed', '--json', '--cache-dir', cacheDir, ...photos]);
    // The first chunk of the JSON arrives, then the pipe closes as `head -c` would close it.
    await run.waitFor('the first output', () => run.stdout.length > 0);
    run.child.stdout!.destroy();
    expect(await run.exited).toBe(0);
    expect(run.stderr).not.toMatch(/EPIPE|Unhandled|at .*\.js:\d+/);
  });
});
