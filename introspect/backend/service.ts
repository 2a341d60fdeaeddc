import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  BACKEND_SERVICE, CheckpointRequest, CheckpointResponse, HelloResponse, IMAGE_NAME, MAX_CONFIG_BYTES, MAX_REQUEST_BYTES, backendMethods,
} from '../../common/backend-api.js';
import { InvalidArgumentError, NotFoundError, errorMessage } from '../../common/errors.js';
import { log, logSafe } from '../../common/log.js';
import { Handler, StatusCode, TtrpcError, TtrpcServer, abortedError, statusName, statusOf } from '../../common/ttrpc/index.js';
import { parseContainerSpec } from '../dump/container.js';
import { cgroupArg } from '../dump/tree.js';
import { archiveEntries, writeArchiveFile } from './archive-file.js';
import { DumpFn } from './guest-ram.js';
import { ImageStore } from './image-store.js';

export interface BackendLimits {
  /** Checkpoints running at once; more are answered RESOURCE_EXHAUSTED. */
  maxConcurrentCheckpoints: number;
  /** Image directories issued and not released (running checkpoints count): the share is not the guest's to fill. */
  maxUnreleased: number;
  /** An issued directory not released after this long is taken back: its shim is gone, or never asks. */
  unreleasedTtlMs: number;
}

export const DEFAULT_LIMITS: BackendLimits = { maxConcurrentCheckpoints: 2, maxUnreleased: 8, unreleasedTtlMs: 15 * 60_000 };
/** Requests one channel connection may have in flight (the guest's relay holds its own to the same number). */
export const MAX_CONCURRENT_REQUESTS = 16;

const CONTAINER_ID = /^[A-Za-z0-9_.-]{1,64}$/;
/** The kernel's PATH_MAX: no cgroup path is longer. */
const MAX_CGROUP = 4096;
const VERSION = (JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

/**
 * The Backend service for one VM: each RPC checks its input (the guest is
 * not trusted), delegates, and lets the ttrpc server map the error to a
 * status (common/ttrpc/status.ts statusOf). The dump itself is injected,
 * so the checks are tested without a guest.
 */
export class BackendService {
  private running = 0;
  /** Names handed to the guest and not released yet, with when (Date.now()). */
  private readonly issued = new Map<string, number>();
  readonly limits: BackendLimits;

  constructor(
    private readonly store: ImageStore,
    private readonly dump: DumpFn,
    limits: Partial<BackendLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  register(server: TtrpcServer): void {
    const m = backendMethods();
    server.register(BACKEND_SERVICE, {
      Hello: bounded(m.hello.implement(async () => this.hello())),
      Checkpoint: bounded(m.checkpoint.implement((req, ctx) => this.checkpoint(req, ctx.signal))),
      Release: bounded(m.release.implement(async (req) => {
        this.release(req.name);
        return {};
      })),
    });
  }

  hello(): HelloResponse {
    return { version: VERSION, max_request_bytes: MAX_REQUEST_BYTES, max_concurrent_checkpoints: this.limits.maxConcurrentCheckpoints };
  }

  async checkpoint(req: CheckpointRequest, signal: AbortSignal): Promise<CheckpointResponse> {
    const t0 = performance.now();
    if (!CONTAINER_ID.test(req.id)) throw new InvalidArgumentError(`container id "${logSafe(req.id, 80)}": give 1-64 of A-Z a-z 0-9 _ . -`);
    // No control characters: containerd makes none, and the path goes into log lines.
    if (req.cgroup.length > MAX_CGROUP || /[\x00-\x1f\x7f]/.test(req.cgroup)) throw new InvalidArgumentError(`cgroup of container ${req.id}: not a cgroup path`);
    const cgroup = cgroupArg(req.cgroup);
    const shown = logSafe(cgroup);
    const config = Buffer.from(req.config ?? []);
    if (config.length > MAX_CONFIG_BYTES) {
      throw new InvalidArgumentError(`config of container ${req.id}: ${config.length} bytes, more than the ${MAX_CONFIG_BYTES} a config.json may have`);
    }
    const container = config.length ? parseContainerSpec(config, `config of container ${req.id}`) : undefined;
    const archive = req.archive ? archiveEntries(req.archive, config, req.id) : undefined;
    const { maxConcurrentCheckpoints, maxUnreleased } = this.limits;
    if (this.running >= maxConcurrentCheckpoints) {
      throw new TtrpcError(StatusCode.RESOURCE_EXHAUSTED, `${this.running} checkpoints of this VM are running, at most ${maxConcurrentCheckpoints} at a time`);
    }
    this.reclaim();
    if (this.issued.size + this.running >= maxUnreleased) {
      throw new TtrpcError(StatusCode.RESOURCE_EXHAUSTED, `${this.issued.size} image directories are not released yet, at most ${maxUnreleased}`);
    }
    const name = crypto.randomBytes(16).toString('hex');
    this.running++;
    try {
      const report = await this.dump(cgroup, this.store.stagingPath(name), container, signal, req.tcp_established ? { tcpEstablished: true } : undefined);
      let archiveBytes = 0;
      try {
        if (archive) archiveBytes = await writeArchiveFile(this.store.stagingArchivePath(name), this.store.stagingPath(name), archive);
        // A caller that went away never learns the name, so nobody would release it.
        if (signal.aborted) throw abortedError(signal.reason);
        if (archive) this.store.publishArchive(name);
        else this.store.publish(name);
      } catch (err) {
        if (archive) this.store.discardArchive(name);
        this.store.discard(name);
        throw err;
      }
      // The archive holds the images: their directory was never the guest's to see.
      if (archive) this.store.discard(name);
      this.issued.set(name, this.now());
      const totalMs = performance.now() - t0;
      log.info(`checkpoint ${req.id} (${shown}) -> ${name}`, {
        processes: report.processes.length, pages: report.pagesWritten, bytes: report.bytesWritten,
        totalMs: Math.round(totalMs), dumpMs: Math.round(report.ms.total), pauseMs: Number((report.pauseMs ?? 0).toFixed(1)),
        ...(archive ? { archiveBytes } : {}),
      });
      return {
        name,
        pids: report.processes.map((p) => p.pid),
        pages_written: BigInt(report.pagesWritten),
        bytes_written: BigInt(report.bytesWritten),
        total_ms: totalMs,
        pause_ms: report.pauseMs ?? 0,
        archive_bytes: BigInt(archiveBytes),
      };
    } catch (err) {
      // The message quotes the guest's comm, paths and names.
      log.warn(`checkpoint ${req.id} (${shown}) failed: ${statusName(statusOf(err))}: ${logSafe(errorMessage(err), 1024)}`);
      throw err;
    } finally {
      this.running--;
    }
  }

  /** Removes an image directory this backend issued; anything else is refused, so no request names another path. */
  release(name: string): void {
    if (!IMAGE_NAME.test(name)) throw new InvalidArgumentError(`image directory "${logSafe(name, 80)}": not a name this backend gives`);
    if (!this.issued.delete(name)) throw new NotFoundError(`image directory ${name}: not issued by this backend, or released already`);
    this.store.remove(name);
    log.info(`released ${name}`);
  }

  /**
   * Frees the slots of names nobody will release: a directory the guest
   * deleted itself, and one older than the time limit (taken back and
   * removed; its shim went away between answer and release). Runs on each
   * admission, and on a timer (serve-command).
   */
  reclaim(): void {
    const now = this.now();
    for (const [name, at] of this.issued) {
      if (!this.store.present(name)) {
        this.issued.delete(name);
        log.info(`image directory ${name}: removed by the guest without a release; its slot is free`);
      } else if (now - at >= this.limits.unreleasedTtlMs) {
        this.issued.delete(name);
        log.warn(`image directory ${name}: not released ${Math.round((now - at) / 1000)} s after it was issued; taking it back`);
        try {
          this.store.remove(name);
        } catch (err) {
          log.error(`image directory ${name}: ${errorMessage(err)}`);
        }
      }
    }
  }
}

/** Refuses a request larger than any this service takes, before decoding it. */
function bounded(handler: Handler): Handler {
  return (payload, ctx) => {
    if (payload.length > MAX_REQUEST_BYTES) {
      return Promise.reject(new InvalidArgumentError(`/${ctx.service}/${ctx.method}: request of ${payload.length} bytes, more than ${MAX_REQUEST_BYTES}`));
    }
    return handler(payload, ctx);
  };
}
