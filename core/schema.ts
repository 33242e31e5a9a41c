// Validation at the edge: every file or payload we read is checked against a zod schema, and a failure
// becomes one domain error naming the file and the field path, with what was expected.

import type { z } from 'zod';
import type { EdgetuneError, ErrorCode } from './errors.js';

type ErrorClass = new (code: ErrorCode, message: string) => EdgetuneError;

export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: string,
  ErrorType: ErrorClass,
  code: ErrorCode,
): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
  throw new ErrorType(code, `${where}: field "${field}": ${issue.message}`);
}
