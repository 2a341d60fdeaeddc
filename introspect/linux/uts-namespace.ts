import { KObject } from '../kernel/object.js';

/** The names uname(2) gives inside a task's UTS namespace (nsproxy->uts_ns->name). */
export function utsNames(nsproxy: KObject): { nodename: string; domainname: string } {
  const name = nsproxy.member('uts_ns').deref().member('name');
  return { nodename: name.member('nodename').string(), domainname: name.member('domainname').string() };
}
