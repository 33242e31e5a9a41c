// Datasets as people keep them: one sub-folder per class, photos inside. Plus the seeded splits that
// training and evaluation use.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { reservedLabelProblem } from '../../core/labels.js';
import { join } from 'node:path';
import { IMAGE_EXTENSIONS, isImageFile } from '../../core/image-files.js';
import { DatasetError } from '../../core/errors.js';
import { seededRandom, shuffle } from '../../core/random.js';

export interface LabelledImage {
  path: string;
  /** Index into `classes`. */
  label: number;
}

export interface FolderDataset {
  root: string;
  classes: string[];
  items: LabelledImage[];
}

/** Reads DIR/<class>/<image>; classes sorted by name. `classes` forces an order (e.g. a head's labels). */
export function readFolderDataset(root: string, classes?: string[]): FolderDataset {
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new DatasetError('DATASET_NOT_FOUND', `${root}: not a folder (expected one sub-folder of photos per class)`);
  }
  const folders = readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  if (folders.length === 0) {
    throw new DatasetError('DATASET_EMPTY', `${root}: no class sub-folders (expected e.g. ${root}/daisy/*.jpg)`);
  }
  const order = classes ?? folders;
  const items: LabelledImage[] = [];
  for (const folder of folders) {
    const reserved = reservedLabelProblem(folder);
    if (reserved) throw new DatasetError('DATASET_RESERVED_CLASS', `${join(root, folder)}: class "${folder}" ${reserved}`);
    const label = order.indexOf(folder);
    if (label < 0) {
      throw new DatasetError('DATASET_UNKNOWN_CLASS', `${join(root, folder)}: class "${folder}" is not one of ${order.join(', ')}`);
    }
    const files = readdirSync(join(root, folder)).filter(isImageFile).sort();
    if (files.length === 0 && !classes) {
      throw new DatasetError('DATASET_EMPTY', `${join(root, folder)}: class folder has no images (${[...IMAGE_EXTENSIONS].join(' ')})`);
    }
    for (const file of files) items.push({ path: join(root, folder, file), label });
  }
  return { root, classes: order, items };
}

/** Indices grouped by label. */
function byClass(labels: ArrayLike<number>, classCount: number): number[][] {
  const groups: number[][] = Array.from({ length: classCount }, () => []);
  for (let i = 0; i < labels.length; i++) groups[labels[i]!]!.push(i);
  return groups;
}

/** Seeded stratified split: `testFraction` of every class goes to test (at least one when a class has 2+). */
export function stratifiedSplit(
  labels: ArrayLike<number>,
  classCount: number,
  testFraction: number,
  seed: number,
): { train: number[]; test: number[] } {
  const random = seededRandom(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (const group of byClass(labels, classCount)) {
    shuffle(group, random);
    const nTest = group.length < 2 ? 0 : Math.max(1, Math.round(group.length * testFraction));
    test.push(...group.slice(0, nTest));
    train.push(...group.slice(nTest));
  }
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

/** Seeded K-shot split: K random samples per class train, all the rest test. */
export function shotSplit(labels: ArrayLike<number>, classCount: number, shots: number, seed: number): { train: number[]; test: number[] } {
  const random = seededRandom(seed);
  const train: number[] = [];
  const test: number[] = [];
  byClass(labels, classCount).forEach((group, label) => {
    if (group.length <= shots) {
      throw new DatasetError('DATASET_TOO_SMALL', `class ${label} has ${group.length} images; --shots ${shots} needs more`);
    }
    shuffle(group, random);
    train.push(...group.slice(0, shots));
    test.push(...group.slice(shots));
  });
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}
