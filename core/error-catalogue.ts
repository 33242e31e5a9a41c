// Every error code edgetune raises, with its domain and the HTTP status it answers with. One place, so a
// code is spelled once (`ErrorCode` is derived from it: a typo is a compile error), the HTTP servers need
// no tables of their own, and a new code is one line here.
//
// Status: 4xx when the caller can fix it (bad input, a state the request conflicts with), 5xx when the
// machine cannot (damaged files, engines, devices that do not answer). Codes that never reach an HTTP
// route still say which side is at fault. `test/unit/error-catalogue.test.ts` checks that every code
// here is used and that each `new XError('CODE'` uses a code of its class's domain.

/** The domain of a code, named after the error class that raises it (`ModelError` is 'model'). */
export type ErrorDomain =
  'model' | 'image' | 'head' | 'dataset' | 'config' | 'sample' | 'source' | 'sync' | 'deploy' | 'console' | 'usage' | 'http' | 'database';

export interface ErrorEntry {
  readonly domain: ErrorDomain;
  readonly status: number;
}

export const ERROR_CATALOGUE = {
  // model: model files, manifests, the catalog, checksums, the importer, engines
  MODEL_NOT_FOUND: { domain: 'model', status: 500 },
  MODEL_UNKNOWN: { domain: 'model', status: 400 },
  MODEL_INVALID: { domain: 'model', status: 500 },
  MANIFEST_INVALID: { domain: 'model', status: 500 },
  MANIFEST_MISSING: { domain: 'model', status: 500 },
  LABELS_MISSING: { domain: 'model', status: 500 },
  LABELS_MISMATCH: { domain: 'model', status: 500 },
  CHECKSUM_MISMATCH: { domain: 'model', status: 500 },
  DOWNLOAD_FAILED: { domain: 'model', status: 502 },
  TFLITE_MALFORMED: { domain: 'model', status: 500 },
  ONNX_MALFORMED: { domain: 'model', status: 500 },
  IMPORT_NOT_TFLITE: { domain: 'model', status: 400 },
  IMPORT_UNSUPPORTED_OP: { domain: 'model', status: 500 },
  IMPORT_UNREACHABLE: { domain: 'model', status: 500 },
  INPUT_NOT_FOUND: { domain: 'model', status: 500 },
  INPUT_MISMATCH: { domain: 'model', status: 500 },
  OUTPUT_NOT_FOUND: { domain: 'model', status: 500 },
  OUTPUT_MISMATCH: { domain: 'model', status: 500 },
  ENGINE_UNKNOWN: { domain: 'model', status: 500 },
  ENGINE_UNAVAILABLE: { domain: 'model', status: 500 },
  ENGINE_UNSUPPORTED: { domain: 'model', status: 500 },
  ENGINE_MISMATCH: { domain: 'model', status: 500 },
  ENGINE_FAILED: { domain: 'model', status: 500 },
  ENGINE_CRASHED: { domain: 'model', status: 500 },
  INFERENCE_FAILED: { domain: 'model', status: 500 },
  SESSION_CLOSED: { domain: 'model', status: 503 },
  BACKBONE_CLOSED: { domain: 'model', status: 503 },
  CACHE_INVALID: { domain: 'model', status: 500 },
  CACHE_DIM_MISMATCH: { domain: 'model', status: 500 },
  CACHE_CLOSED: { domain: 'model', status: 500 },
  CALIBRATION_EMPTY: { domain: 'model', status: 400 },
  PTQ_UNSUPPORTED: { domain: 'model', status: 400 },
  QUANTIZE_NOT_ONNX: { domain: 'model', status: 400 },

  // image: decoding and preprocessing what a camera, an inbox or an upload gave
  IMAGE_EMPTY: { domain: 'image', status: 400 },
  IMAGE_UNREADABLE: { domain: 'image', status: 400 },
  IMAGE_TOO_LARGE: { domain: 'image', status: 400 },

  // head: training, prediction, merging and head files (a damaged stored head is the machine's problem)
  HEAD_INVALID: { domain: 'head', status: 400 },
  HEAD_KIND: { domain: 'head', status: 400 },
  HEAD_LABEL: { domain: 'head', status: 400 },
  NOT_ENOUGH_LABELS: { domain: 'head', status: 409 },
  HEAD_DIM_MISMATCH: { domain: 'head', status: 409 },
  HEAD_BACKBONE_MISMATCH: { domain: 'head', status: 409 },
  HEAD_MERGE: { domain: 'head', status: 409 },
  HEAD_OPEN_SET: { domain: 'head', status: 400 },
  HEAD_UNREADABLE: { domain: 'head', status: 500 },
  HEAD_TRUNCATED: { domain: 'head', status: 500 },
  HEAD_NOT_A_HEAD: { domain: 'head', status: 500 },
  HEAD_FORMAT_UNSUPPORTED: { domain: 'head', status: 500 },
  HEAD_CHECKSUM: { domain: 'head', status: 500 },
  HEAD_NOT_FINITE: { domain: 'head', status: 400 },

  // dataset: folders of photos given to the CLI
  DATASET_NOT_FOUND: { domain: 'dataset', status: 400 },
  DATASET_UNREADABLE: { domain: 'dataset', status: 400 },
  DATASET_EMPTY: { domain: 'dataset', status: 400 },
  DATASET_TOO_SMALL: { domain: 'dataset', status: 400 },
  DATASET_UNKNOWN_CLASS: { domain: 'dataset', status: 400 },
  DATASET_RESERVED_CLASS: { domain: 'dataset', status: 400 },
  DATASET_TOO_FEW_CLASSES: { domain: 'dataset', status: 400 },

  // config: configuration files and environment
  CONFIG_UNREADABLE: { domain: 'config', status: 400 },
  CONFIG_SYNTAX: { domain: 'config', status: 400 },
  CONFIG_INVALID: { domain: 'config', status: 400 },
  TOKEN_INVALID: { domain: 'config', status: 400 },
  CONFIG_DEVICE_LOGIN_MISMATCH: { domain: 'config', status: 400 },

  // sample: the agent's sample store
  SAMPLE_NOT_FOUND: { domain: 'sample', status: 404 },
  HEAD_NOT_FOUND: { domain: 'sample', status: 404 },
  STORE_CORRUPT: { domain: 'sample', status: 500 },
  QUEUE_FULL: { domain: 'sample', status: 503 },
  STORE_FULL: { domain: 'sample', status: 507 },
  STORE_NO_IMAGES: { domain: 'sample', status: 500 },

  // source: sample sources (inbox, camera still and stream)
  LABEL_INVALID: { domain: 'source', status: 400 },
  NO_CAMERA: { domain: 'source', status: 409 },
  SOURCE_NOT_STARTED: { domain: 'source', status: 503 },
  SOURCE_STOPPED: { domain: 'source', status: 503 },
  CAMERA_FAILED: { domain: 'source', status: 502 },
  CAMERA_EMPTY: { domain: 'source', status: 502 },
  CAMERA_TOO_LARGE: { domain: 'source', status: 502 },
  CAMERA_TIMEOUT: { domain: 'source', status: 504 },
  CAMERA_DROPPED: { domain: 'source', status: 503 },

  // sync: fleet protocol messages, keys, chunked files, pushed config and agent updates
  SYNC_MALFORMED: { domain: 'sync', status: 400 },
  SYNC_PROTOCOL_VERSION: { domain: 'sync', status: 400 },
  SYNC_BAD_TOPIC: { domain: 'sync', status: 400 },
  SYNC_BAD_ID: { domain: 'sync', status: 400 },
  SYNC_BAD_CHUNK: { domain: 'sync', status: 400 },
  SYNC_BAD_SIGNATURE: { domain: 'sync', status: 400 },
  SYNC_BAD_CONFIG: { domain: 'sync', status: 400 },
  SYNC_BAD_KEY: { domain: 'sync', status: 500 },
  SYNC_CHECKSUM: { domain: 'sync', status: 400 },
  SYNC_TOO_LARGE: { domain: 'sync', status: 413 },
  SYNC_TOO_MANY_FILES: { domain: 'sync', status: 413 },
  SYNC_BACKBONE_MISMATCH: { domain: 'sync', status: 409 },
  SYNC_TARGET_MISMATCH: { domain: 'sync', status: 409 },
  SYNC_REPLAY: { domain: 'sync', status: 409 },
  SYNC_UNKNOWN_COMMAND: { domain: 'sync', status: 400 },
  SYNC_UNKNOWN_DEVICE: { domain: 'sync', status: 404 },
  SYNC_ERROR: { domain: 'sync', status: 500 },
  // the console's door for device heads (console/head-gate.ts, quarantine.ts, quotas.ts)
  HEAD_REFUSED: { domain: 'sync', status: 400 },
  DEVICE_QUARANTINED: { domain: 'sync', status: 403 },
  DEVICE_RATE: { domain: 'sync', status: 429 },
  DEVICE_QUOTA: { domain: 'sync', status: 429 },

  // deploy: bundles, SSH provisioning, SD cards, releases on a device
  BUNDLE_TARGET_UNSUPPORTED: { domain: 'deploy', status: 400 },
  BUNDLE_UNREADABLE: { domain: 'deploy', status: 400 },
  BUNDLE_NO_ROOT: { domain: 'deploy', status: 500 },
  BUNDLE_PACKAGE_MISSING: { domain: 'deploy', status: 500 },
  BUNDLE_NO_HEADERS: { domain: 'deploy', status: 500 },
  BUNDLE_NO_CROSS_COMPILER: { domain: 'deploy', status: 500 },
  BUNDLE_FOREIGN_BINARY: { domain: 'deploy', status: 500 },
  BUNDLE_FETCH_FAILED: { domain: 'deploy', status: 502 },
  BUNDLE_BUILD_FAILED: { domain: 'deploy', status: 500 },
  BUNDLE_PATH_TOO_LONG: { domain: 'deploy', status: 500 },
  // deploy try: another CPU's bundle under qemu-user, a board presented in a mount namespace
  TRY_NO_EMULATOR: { domain: 'deploy', status: 400 },
  TRY_NO_QEMU: { domain: 'deploy', status: 500 },
  TRY_NO_SYSROOT: { domain: 'deploy', status: 500 },
  TRY_NO_NAMESPACE: { domain: 'deploy', status: 500 },
  TRY_UNKNOWN_BOARD: { domain: 'deploy', status: 400 },
  INVENTORY_UNREADABLE: { domain: 'deploy', status: 400 },
  INVENTORY_BAD_LINE: { domain: 'deploy', status: 400 },
  HOST_KEY_UNKNOWN: { domain: 'deploy', status: 502 },
  HOST_KEY_CHANGED: { domain: 'deploy', status: 502 },
  DEPLOY_UNREACHABLE: { domain: 'deploy', status: 502 },
  DEPLOY_AUTH_FAILED: { domain: 'deploy', status: 502 },
  DEPLOY_SSH_FAILED: { domain: 'deploy', status: 502 },
  DEPLOY_PREFLIGHT: { domain: 'deploy', status: 409 },
  DEPLOY_DISK_FULL: { domain: 'deploy', status: 507 },
  DEPLOY_UPLOAD_FAILED: { domain: 'deploy', status: 502 },
  DEPLOY_REMOTE_FAILED: { domain: 'deploy', status: 502 },
  DEPLOY_HEALTH_FAILED: { domain: 'deploy', status: 502 },
  DEPLOY_TIMEOUT: { domain: 'deploy', status: 504 },
  DEPLOY_INTERRUPTED: { domain: 'deploy', status: 500 },
  DEPLOY_FAILED: { domain: 'deploy', status: 500 },
  DEPLOY_BROKER: { domain: 'deploy', status: 502 },
  DEPLOY_NO_CONSOLE: { domain: 'deploy', status: 400 },
  DEPLOY_BAD_PREFIX: { domain: 'deploy', status: 400 },
  DEPLOY_BAD_VERSION: { domain: 'deploy', status: 400 },
  SDCARD_NOT_BOOT: { domain: 'deploy', status: 400 },
  SDCARD_BAD_USER_DATA: { domain: 'deploy', status: 400 },
  SDCARD_FIRSTRUN_TAKEN: { domain: 'deploy', status: 409 },

  // console: the fleet console, its merges, rollouts and commands to devices
  CONSOLE_BAD_DIR: { domain: 'console', status: 400 },
  CONSOLE_NO_DIR: { domain: 'console', status: 404 },
  CONSOLE_TOKEN_FILE_MODE: { domain: 'console', status: 400 },
  CONSOLE_TOKEN_FILE_BAD: { domain: 'console', status: 400 },
  CONSOLE_EXTERNAL_BROKER: { domain: 'console', status: 400 },
  CONSOLE_NOT_RUNNING: { domain: 'console', status: 409 },
  CONSOLE_BUSY: { domain: 'console', status: 409 },
  CONSOLE_NO_HEADS: { domain: 'console', status: 409 },
  CONSOLE_NO_FLEET_HEAD: { domain: 'console', status: 409 },
  CONSOLE_NOTHING_TO_ROLL_BACK: { domain: 'console', status: 409 },
  CONSOLE_REFUSED: { domain: 'console', status: 502 },
  COMMAND_TIMEOUT: { domain: 'console', status: 504 },
  COMMAND_FAILED: { domain: 'console', status: 502 },
  HEAD_HELD_BACK: { domain: 'console', status: 409 },
  DEVICE_KEY_CHANGED: { domain: 'console', status: 409 },
  CONSOLE_NO_DEVICES: { domain: 'console', status: 409 },
  CONSOLE_NO_SUCH_HEAD: { domain: 'console', status: 404 },
  CONSOLE_BAD_SAMPLE: { domain: 'console', status: 502 },
  CONSOLE_BAD_SCOPE: { domain: 'console', status: 400 },
  CONSOLE_ROLLOUT_LOST: { domain: 'console', status: 502 },
  // problem rows of what the broker refused (console/device-trouble.ts)
  DEVICE_LOGIN_REFUSED: { domain: 'console', status: 401 },
  DEVICE_REFUSED: { domain: 'console', status: 403 },
  DEVICE_FLAPPING: { domain: 'console', status: 503 },
  CONSOLE_NOT_HELD: { domain: 'console', status: 409 },
  CONSOLE_NOT_QUARANTINED: { domain: 'console', status: 404 },
  CONSOLE_BAD_LABEL: { domain: 'console', status: 400 },
  CONSOLE_BAD_DECISION: { domain: 'console', status: 400 },
  CLASS_NOT_ACCEPTED: { domain: 'console', status: 409 },
  // broker refusals, recorded as problems (console/broker.ts)
  BROKER_REFUSED_PACKET: { domain: 'console', status: 413 },

  // usage: the command line
  USAGE: { domain: 'usage', status: 400 },

  // http: the agent's and the console's JSON APIs
  BAD_JSON: { domain: 'http', status: 400 },
  BAD_REQUEST: { domain: 'http', status: 400 },
  EMPTY_BODY: { domain: 'http', status: 400 },
  UNAUTHORIZED: { domain: 'http', status: 401 },
  NOT_FOUND: { domain: 'http', status: 404 },
  IMAGE_NOT_FOUND: { domain: 'http', status: 404 },
  DEVICE_NOT_FOUND: { domain: 'http', status: 404 },
  DEVICE_OFFLINE: { domain: 'http', status: 409 },
  DEVICE_NOT_QUARANTINED: { domain: 'http', status: 404 },
  PAYLOAD_TOO_LARGE: { domain: 'http', status: 413 },
  UPLOADS_BUSY: { domain: 'http', status: 503 },
  HOST_NOT_ALLOWED: { domain: 'http', status: 421 },
  CROSS_ORIGIN: { domain: 'http', status: 403 },
  UNSUPPORTED_MEDIA_TYPE: { domain: 'http', status: 415 },
  INTERNAL: { domain: 'http', status: 500 },

  // database: opening and migrating SQLite files
  DB_TOO_NEW: { domain: 'database', status: 500 },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Codes of one domain, e.g. `CodeOf<'http'>`. */
export type CodeOf<D extends ErrorDomain> = { [C in ErrorCode]: (typeof ERROR_CATALOGUE)[C]['domain'] extends D ? C : never }[ErrorCode];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOGUE, value);
}

/** A code read from another process (a device's reply, an API body): kept when known, else `fallback`. */
export function errorCodeOr(value: unknown, fallback: ErrorCode): ErrorCode {
  return isErrorCode(value) ? value : fallback;
}

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CATALOGUE[code].status;
}
