/**
 * Error classes shared by the guest and host sides. Each has a stable `code`;
 * callers test `instanceof` or `code`, never message text.
 */
export class OvmError extends Error {
  readonly code: string = 'OVM_ERROR';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Input from a user or a caller is wrong: a bad name, path or option. */
export class InvalidArgumentError extends OvmError {
  override readonly code = 'INVALID_ARGUMENT';
}

/** The thing asked for does not exist (a lab guest, a container, a pid). */
export class NotFoundError extends OvmError {
  override readonly code = 'NOT_FOUND';
}

/** The thing asked for already exists. */
export class AlreadyExistsError extends OvmError {
  override readonly code = 'ALREADY_EXISTS';
}

/** A deadline ran out. */
export class TimeoutError extends OvmError {
  override readonly code = 'TIMEOUT';
}

/** An external program or component failed (QEMU, apt-get, a guest command). */
export class ExternalError extends OvmError {
  override readonly code = 'EXTERNAL';
}

/** Data read from an untrusted source (guest RAM, a channel) is malformed. */
export class BadDataError extends OvmError {
  override readonly code = 'BAD_DATA';
}

/**
 * A checkpoint archive (or a tar inside one) we refuse to unpack or apply:
 * `entry` is the entry's name as the archive gives it, `reason` why.
 */
export class ArchiveRefusedError extends OvmError {
  override readonly code = 'ARCHIVE_REFUSED';
  constructor(readonly entry: string, readonly reason: string) {
    super(`checkpoint archive entry ${JSON.stringify(entry)}: ${reason}`);
  }
}

/** The request is understood but asks for something not supported (a kind of file, a socket state). */
export class UnsupportedError extends OvmError {
  override readonly code = 'UNSUPPORTED';
}

/** The system is not in the state the operation needs (tasks not frozen, a directory not empty). */
export class FailedPreconditionError extends OvmError {
  override readonly code = 'FAILED_PRECONDITION';
}

/** A bound on what one request may cost ran out (pages scanned, runs, bytes, pause time). */
export class ResourceExhaustedError extends OvmError {
  override readonly code = 'RESOURCE_EXHAUSTED';
  constructor(readonly resource: string, readonly limit: number, readonly who: string, detail = '') {
    super(`${who}: over the dump's budget of ${limit} ${resource}${detail ? ` (${detail})` : ''}`);
  }
}

/** A dependency is down for now, and asking again later may work (a guest kernel that failed to attach, backing off). */
export class UnavailableError extends OvmError {
  override readonly code = 'UNAVAILABLE';
}

/** The message of an unknown thrown value, for logs and CLI output. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
