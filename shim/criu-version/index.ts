export { FdRecords, MAX_RECORD, RecordChannel, ServeResult, serve } from './records.js';
export { IMAGES_CRIU_VERSION, REFUSAL, ReqType, VERSION_TEXT, answer, decodeRequest, decodeResponse, encodeRequest, encodeResponse } from './rpc.js';
export { STAND_IN_DIR, STAND_IN_MARK, holdsStandIn, withoutStandIn } from './hidden-path.js';
