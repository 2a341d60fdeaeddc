/** The shim's process helper: subreaper, anonymous pipes, terminals (subreaper.py and its line protocol). */
export { HELPER_SCRIPT, ProcessHelper, type Pipe } from './helper.js';
