// Errors cross the worker boundary as plain objects and become domain errors again on the other side.

import { errorCodeOr } from '../../core/error-catalogue.js';
import { EdgetuneError, ImageError, ModelError, errorMessage } from '../../core/errors.js';

export interface WireError {
  name: string;
  code: string;
  message: string;
}

export function serializeError(err: unknown): WireError {
  if (err instanceof EdgetuneError) return { name: err.name, code: err.code, message: err.message };
  return { name: 'Error', code: 'ENGINE_FAILED', message: errorMessage(err) };
}

export function deserializeError(wire: WireError): EdgetuneError {
  const ErrorClass = wire.name === 'ImageError' ? ImageError : ModelError;
  return new ErrorClass(errorCodeOr(wire.code, 'ENGINE_FAILED'), wire.message);
}
