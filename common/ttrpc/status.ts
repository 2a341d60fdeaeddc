import {
  AlreadyExistsError,
  ArchiveRefusedError,
  BadDataError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  OvmError,
  ResourceExhaustedError,
  TimeoutError,
  UnavailableError,
  UnsupportedError,
} from '../errors.js';

/** gRPC status codes (google.rpc.Code), which ttrpc uses unchanged. */
export enum StatusCode {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** The code's name, or CODE_<n> for a code this enum does not know. */
export function statusName(code: number): string {
  return StatusCode[code] ?? `CODE_${code}`;
}

/**
 * A call that ended with a non-OK status, on either side: the client rejects
 * with it, and a handler may throw it to choose the status it answers with.
 */
export class TtrpcError extends OvmError {
  override readonly code = 'TTRPC';
  /** The status message without the code name, as sent on the wire. */
  readonly detail: string;

  constructor(
    readonly status: StatusCode,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${statusName(status)}: ${detail}`, options);
    this.detail = detail;
  }
}

/** Node system errors that have an obvious status, as upstream's convertCode maps os errors. */
const ERRNO_STATUS: Record<string, StatusCode> = {
  ENOENT: StatusCode.NOT_FOUND,
  EEXIST: StatusCode.ALREADY_EXISTS,
  EACCES: StatusCode.PERMISSION_DENIED,
  EPERM: StatusCode.PERMISSION_DENIED,
};

/** The status a server answers with for an error thrown by a handler. */
export function statusOf(err: unknown): StatusCode {
  if (err instanceof TtrpcError) return err.status;
  if (err instanceof InvalidArgumentError || err instanceof BadDataError || err instanceof ArchiveRefusedError) return StatusCode.INVALID_ARGUMENT;
  if (err instanceof NotFoundError) return StatusCode.NOT_FOUND;
  if (err instanceof AlreadyExistsError) return StatusCode.ALREADY_EXISTS;
  if (err instanceof TimeoutError) return StatusCode.DEADLINE_EXCEEDED;
  if (err instanceof UnsupportedError) return StatusCode.UNIMPLEMENTED;
  if (err instanceof FailedPreconditionError) return StatusCode.FAILED_PRECONDITION;
  if (err instanceof ResourceExhaustedError) return StatusCode.RESOURCE_EXHAUSTED;
  if (err instanceof UnavailableError) return StatusCode.UNAVAILABLE;
  // AbortSignal.timeout() and abort() reasons, for handlers that rethrow signal.reason.
  if (err instanceof DOMException && err.name === 'TimeoutError') return StatusCode.DEADLINE_EXCEEDED;
  if (err instanceof DOMException && err.name === 'AbortError') return StatusCode.CANCELLED;
  if (err instanceof OvmError) return StatusCode.INTERNAL;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof errno === 'string' && errno in ERRNO_STATUS) return ERRNO_STATUS[errno];
  // Upstream answers Unknown for errors it cannot classify.
  return StatusCode.UNKNOWN;
}

/** The status message for an error: a TtrpcError's own detail, so relaying does not nest code names. */
export function statusMessageOf(err: unknown): string {
  if (err instanceof TtrpcError) return err.detail;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The error to reject a call with when its AbortSignal fires. */
export function abortedError(reason: unknown): TtrpcError {
  const status = statusOf(reason) === StatusCode.DEADLINE_EXCEEDED ? StatusCode.DEADLINE_EXCEEDED : StatusCode.CANCELLED;
  return new TtrpcError(status, `call aborted: ${statusMessageOf(reason)}`, { cause: reason });
}
