import type protobuf from 'protobufjs';
import { BadDataError, InvalidArgumentError, errorMessage } from '../errors.js';
import { TO_OBJECT } from '../proto.js';
import type { CallOptions, TtrpcClient } from './client.js';
import type { CallContext, Handler } from './server-connection.js';
import { StatusCode, TtrpcError } from './status.js';


/**
 * One unary method with its protobuf request and response types, so callers
 * and handlers deal in plain objects (common/proto.ts TO_OBJECT; fromObject
 * takes the same shapes back). Req and Res are the caller's
 * description of those objects; protobufjs does not check them against the
 * schema beyond what fromObject converts.
 */
export class TypedMethod<Req extends object, Res extends object> {
  constructor(
    readonly service: string,
    readonly method: string,
    readonly requestType: protobuf.Type,
    readonly responseType: protobuf.Type,
  ) {}

  async call(client: TtrpcClient, request: Req, opts?: CallOptions): Promise<Res> {
    const payload = this.encode(this.requestType, request, (message, cause) => new InvalidArgumentError(message, { cause }));
    const reply = await client.call(this.service, this.method, payload, opts);
    return this.decode<Res>(this.responseType, reply, (message, cause) => new BadDataError(message, { cause }));
  }

  /** A Handler for TtrpcServer.register from a function of plain objects. */
  implement(fn: (request: Req, ctx: CallContext) => Promise<Res>): Handler {
    return async (payload, ctx) => {
      const request = this.decode<Req>(this.requestType, payload, (message, cause) => new BadDataError(message, { cause }));
      const response = await fn(request, ctx);
      return this.encode(this.responseType, response, (message, cause) => new TtrpcError(StatusCode.INTERNAL, message, { cause }));
    };
  }

  private encode(type: protobuf.Type, value: object, fail: (message: string, cause: unknown) => Error): Uint8Array {
    try {
      return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
    } catch (err) {
      throw fail(`/${this.service}/${this.method}: cannot encode ${type.fullName}: ${errorMessage(err)}`, err);
    }
  }

  private decode<T>(type: protobuf.Type, bytes: Uint8Array, fail: (message: string, cause: unknown) => Error): T {
    try {
      return type.toObject(type.decode(bytes), TO_OBJECT) as T;
    } catch (err) {
      throw fail(`/${this.service}/${this.method}: ${type.fullName} does not decode: ${errorMessage(err)}`, err);
    }
  }
}
