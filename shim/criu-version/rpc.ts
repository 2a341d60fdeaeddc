import { BadDataError, errorMessage } from '../../common/errors.js';
import { TO_OBJECT, asBuffer, loadProtos } from '../../common/proto.js';

/**
 * The CRIU release whose images the host's backend writes (introspect/criu
 * follows CRIU 3.17's layout; the lab restores them with Debian's 3.17.1).
 * containerd 2.x wants at least 3.16 (go-criu's PodCriuVersion, 31600).
 */
export const IMAGES_CRIU_VERSION = { major: 3, minor: 17, sublevel: 1 } as const;

/** What `criu --version` prints, as CRIU prints it. */
export const VERSION_TEXT = `Version: ${IMAGES_CRIU_VERSION.major}.${IMAGES_CRIU_VERSION.minor}.${IMAGES_CRIU_VERSION.sublevel}\n`;

/** criu_req_type values this program speaks of (proto/criu-rpc/rpc.proto). */
export const ReqType = { EMPTY: 0, DUMP: 1, RESTORE: 2, CHECK: 3, PRE_DUMP: 4, VERSION: 10 } as const;

/** EOPNOTSUPP: what cr_errno says for a request this stand-in never serves. */
const EOPNOTSUPP = 95;

export const REFUSAL = 'ovmigrate: CRIU is not installed in this guest; this criu answers version queries only. '
  + 'Checkpoints are dumped from the host (the ovmigrate backend, through the ovmigrate shim); '
  + 'restoring needs the real CRIU';

export interface CriuRequest {
  type: number;
  keep_open?: boolean;
}

export interface CriuResponse {
  type: number;
  success: boolean;
  cr_errno?: number;
  cr_errmsg?: string;
  version?: { major_number: number; minor_number: number; sublevel?: number; name?: string };
}

function types() {
  const root = loadProtos('criu-rpc');
  return { req: root.lookupType('criu_req'), resp: root.lookupType('criu_resp'), reqType: root.lookupEnum('criu_req_type') };
}

export function decodeRequest(bytes: Uint8Array): CriuRequest {
  const { req } = types();
  try {
    return req.toObject(req.decode(bytes), { ...TO_OBJECT, defaults: false }) as CriuRequest;
  } catch (err) {
    throw new BadDataError(`a criu_req that does not decode (${bytes.length} bytes): ${errorMessage(err)}`, { cause: err });
  }
}

export function encodeRequest(r: CriuRequest): Buffer {
  const { req } = types();
  return asBuffer(req.encode(req.fromObject(r)).finish());
}

export function decodeResponse(bytes: Uint8Array): CriuResponse {
  const { resp } = types();
  return resp.toObject(resp.decode(bytes), { ...TO_OBJECT, defaults: false }) as CriuResponse;
}

export function encodeResponse(r: CriuResponse): Buffer {
  const { resp } = types();
  return asBuffer(resp.encode(resp.fromObject(r)).finish());
}

/** A request type's name, for the refusal text (the number when CRIU's enum has no such value). */
function typeName(type: number): string {
  return types().reqType.valuesById[type] ?? String(type);
}

/**
 * The answer to one request: VERSION gets the images' CRIU version
 * (go-criu's GetCriuVersion: major*10000 + minor*100 + sublevel, no gitid);
 * everything else a failure saying why, so that nothing takes this for a
 * CRIU that dumped or restored.
 */
export function answer(req: CriuRequest): CriuResponse {
  if (req.type === ReqType.VERSION) {
    const v = IMAGES_CRIU_VERSION;
    return { type: req.type, success: true, version: { major_number: v.major, minor_number: v.minor, sublevel: v.sublevel, name: 'ovmigrate' } };
  }
  return { type: req.type, success: false, cr_errno: EOPNOTSUPP, cr_errmsg: `${typeName(req.type)} refused: ${REFUSAL}` };
}

/** The answer to a record that is no criu_req at all. */
export function answerMalformed(err: unknown): CriuResponse {
  return { type: ReqType.EMPTY, success: false, cr_errno: 22, cr_errmsg: `ovmigrate criu stand-in: ${errorMessage(err)}` };
}
