/**
 * The little of gRPC over HTTP/2 the proxy speaks itself (grpc/grpc
 * doc/PROTOCOL-HTTP2.md): the 5-byte message prefix, grpc-timeout, the
 * percent-encoded grpc-message, status trailers. Hand-written on purpose:
 * a grpc-js Server and Client per forwarded call cost several times the CPU
 * containerd spends answering it (test/bench/cri-forward.bench.ts), and the
 * kubelet polls all day. Forwarded calls never decode a message at all.
 */
import type http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';

/** The CRI's messages (ListContainers on a big node, image lists) can pass 4 MiB; the kubelet allows 16 MiB. */
export const MAX_CRI_MESSAGE = 16 * 1024 * 1024;
const PREFIX = 5;

/** A status the proxy gives itself, as gRPC carries it. */
export class GrpcWireError extends Error {
  readonly code = 'GRPC_WIRE';
  constructor(readonly status: grpc.status, message: string) {
    super(message);
  }
}

/** One message with its prefix (never compressed). */
export function frameMessage(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(PREFIX + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, PREFIX);
  return out;
}

/**
 * Splits a stream of DATA bytes into messages, whatever the chunking.
 * A compressed message is refused (we offer no grpc-accept-encoding, so a
 * peer that compresses anyway breaks the protocol), and so is one over `max`.
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1;

  constructor(private readonly max = MAX_CRI_MESSAGE) {}

  /** The messages completed by this chunk; throws GrpcWireError on a refused one. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < PREFIX) break;
        const head = this.take(PREFIX);
        if (head[0] !== 0) throw new GrpcWireError(grpc.status.UNIMPLEMENTED, `compressed message (flag ${head[0]}): only identity encoding is taken`);
        const length = head.readUInt32BE(1);
        if (length > this.max) throw new GrpcWireError(grpc.status.RESOURCE_EXHAUSTED, `message of ${length} bytes: more than the ${this.max} taken`);
        this.need = length;
      }
      if (this.buffered < this.need) break;
      out.push(this.take(this.need));
      this.need = -1;
    }
    return out;
  }

  /** True between messages (a stream ending elsewhere was cut short). */
  get idle(): boolean {
    return this.need < 0 && this.buffered === 0;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return head;
  }
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** grpc-timeout ("100m", "2S": at most 8 digits and a unit) in milliseconds; undefined when absent or malformed. */
export function parseTimeout(value: string | string[] | undefined): number | undefined {
  const m = typeof value === 'string' ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  return m ? Number(m[1]) * TIMEOUT_UNITS[m[2]] : undefined;
}

/** A grpc-timeout for `ms` milliseconds from now (at least 1 ms, within 8 digits). */
export function formatTimeout(ms: number): string {
  const t = Math.max(1, Math.ceil(ms));
  if (t < 1e8) return `${t}m`;
  if (t / 1000 < 1e8) return `${Math.ceil(t / 1000)}S`;
  return `${Math.min(99_999_999, Math.ceil(t / 3_600_000))}H`;
}

/** grpc-message: printable ASCII but '%' as is, the rest as %XX of its UTF-8 bytes. */
export function encodeStatusMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The inverse; a malformed escape stays as it is, as the spec asks of receivers. */
export function decodeStatusMessage(value: string): string {
  if (!value.includes('%')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const hex = value[i] === '%' ? value.slice(i + 1, i + 3) : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(...Buffer.from(value[i], 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Headers that belong to one hop (HTTP/2 or the gRPC transport), never metadata of the call. */
const TRANSPORT_KEYS = new Set(['user-agent', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type',
  'grpc-status', 'grpc-message', 'grpc-status-details-bin']);

/** A call's metadata from HTTP/2 headers (binary -bin values decoded). */
export function metadataOf(headers: http2.IncomingHttpHeaders): grpc.Metadata {
  const md: http2.IncomingHttpHeaders = {};
  for (const key of Object.keys(headers)) if (key[0] !== ':' && !TRANSPORT_KEYS.has(key)) md[key] = headers[key];
  return grpc.Metadata.fromHttp2Headers(md);
}

/** Metadata as HTTP/2 headers, without any transport key it may carry. */
export function headersOf(metadata: grpc.Metadata): http2.OutgoingHttpHeaders {
  const out = metadata.toHttp2Headers();
  for (const key of Object.keys(out)) if (key[0] === ':' || TRANSPORT_KEYS.has(key)) delete out[key];
  return out;
}

/** The status and trailers a call ended with, from its trailers (or a trailers-only response's headers). */
export function statusOfTrailers(trailers: http2.IncomingHttpHeaders): grpc.StatusObject {
  const raw = trailers['grpc-status'];
  const code = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : grpc.status.UNKNOWN;
  const message = trailers['grpc-message'];
  const details = typeof message === 'string' ? decodeStatusMessage(message) : raw === undefined ? 'no grpc-status in the trailers' : '';
  return { code, details, metadata: metadataOf(trailers) };
}

/** Trailers (or a trailers-only response's extra headers) for a status. */
export function trailersOf(code: grpc.status, details: string, metadata?: grpc.Metadata): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = metadata ? headersOf(metadata) : {};
  out['grpc-status'] = String(code);
  if (details) out['grpc-message'] = encodeStatusMessage(details);
  return out;
}

/** The status a client sees for an HTTP/2 RST_STREAM code, as grpc-js and grpc-go map it. */
export function statusOfReset(rstCode: number): grpc.status {
  if (rstCode === 0x7 /* REFUSED_STREAM */) return grpc.status.UNAVAILABLE;
  if (rstCode === 0x8 /* CANCEL */) return grpc.status.CANCELLED;
  if (rstCode === 0xb /* ENHANCE_YOUR_CALM */) return grpc.status.RESOURCE_EXHAUSTED;
  return grpc.status.INTERNAL;
}
