// Small JPEG previews for the labelling page.

import sharp from 'sharp';
import { ImageError, errorMessage } from '../../core/errors.js';
import { decodeBmp, isBmp } from './bmp.js';

export async function thumbnail(bytes: Uint8Array, where: string, size = 160): Promise<Buffer> {
  try {
    const input = isBmp(bytes) ? decodeBmp(bytes, where) : undefined;
    const pipeline = input
      ? sharp(input.data, { raw: { width: input.width, height: input.height, channels: 3 } })
      : sharp(bytes, { limitInputPixels: 64_000_000 }).rotate();
    return await pipeline.resize(size, size, { fit: 'cover' }).jpeg({ quality: 75 }).toBuffer();
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new ImageError('IMAGE_UNREADABLE', `${where}: cannot make a thumbnail: ${errorMessage(err)}`);
  }
}
