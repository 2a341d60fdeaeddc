import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { ifaddrImage, route6Image, routeImage, ruleImage } from '../../introspect/dump/namespaces/net-rtnl-images.js';
import { KObject } from '../../introspect/kernel/object.js';
import { mainRoutes4 } from '../../introspect/linux/fib4.js';
import { mainRoutes6 } from '../../introspect/linux/fib6.js';
import { rules4 } from '../../introspect/linux/fib-rules.js';
import { inet4Addresses, inet6Addresses } from '../../introspect/linux/net-addresses.js';
import { netDevices } from '../../introspect/linux/net-devices.js';
import { deviceSysctls, netnsSysctls } from '../../introspect/linux/net-sysctls.js';
import { netfilterHooks } from '../../introspect/linux/netfilter.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { NET_ENUMS, NET_STRUCTS, fakeNetNs } from './helpers/fake-net.js';
import { FakeKernel } from './helpers/fake-program.js';

/** The messages of an `ip ... save` file, nlmsg_seq/pid zeroed, as hex. */
function messages(file: Buffer): string[] {
  const out: string[] = [];
  for (let i = 4; i < file.length;) {
    const len = file.readUInt32LE(i);
    const m = Buffer.from(file.subarray(i, i + len));
    m.fill(0, 8, 16);
    out.push(m.toString('hex'));
    i += len;
  }
  return out;
}

const SEQ_PID = '0000000000000000';

function setup() {
  const k = new FakeKernel({ structs: NET_STRUCTS, enums: NET_ENUMS });
  k.u64(k.symbol('tick_nsec', 8), 4_000_000n);
  const { net, other } = fakeNetNs(k);
  return { k, net: KObject.struct(k.program(), 'net', net), other };
}

describe('a network namespace read from a fake kernel, and its images as `ip ... save` writes them', () => {
  it('links: lo and a veth whose peer is in another namespace, their RTM_NEWLINK flags and addresses', () => {
    const { net, other } = setup();
    const devs = netDevices(net);
    assert.deepEqual(devs.map((d) => [d.name, d.ifindex, d.type, d.mtu, d.kind]), [['lo', 1, 772, 65536, undefined], ['ve0', 2, 1, 1500, 'veth']]);
    // dev_get_flags: UP|LOOPBACK|RUNNING|LOWER_UP, as criu's netdev image of lo holds it (0x10049).
    assert.equal(devs[0].flags, 0x10049);
    assert.equal(devs[1].flags, 0x11043);
    assert.equal(devs[1].address.toString('hex'), '02f90d8b2b53');
    assert.deepEqual(devs[1].peer, { ifindex: 7, net: other, name: 'vh0' });
  });

  it('addresses: ip addr save bytes (IPv4 then IPv6), as the guest kernel wrote them', () => {
    const { net } = setup();
    const devs = netDevices(net);
    const file = ifaddrImage(devs.flatMap((d) => inet4Addresses(d.dev)), devs.flatMap((d) => inet6Addresses(d.dev)), 250n);
    assert.equal(file.readUInt32LE(0), 0x47361222);
    // Created 100 s after boot: cstamp = tstamp = 10000 hundredths.
    const ci = 'ffffffffffffffff1027000010270000';
    const hdr = (len: string) => `${len}000000` + '14000200' + SEQ_PID;
    const hex = (t: string) => Buffer.from(t).toString('hex');
    assert.deepEqual(messages(file), [
      hdr('4c') + '020880fe01000000' + '080001007f000001' + '080002007f000001' + `07000300${hex('lo')}0000` + '0800080080000000' + `14000600${ci}`,
      hdr('4c') + '0218800002000000' + '080001000a610002' + '080002000a610002' + `08000300${hex('ve0')}00` + '0800080080000000' + `14000600${ci}`,
      hdr('50') + '0a8080fe01000000' + '14000100' + '00'.repeat(15) + '01' + `14000600${ci}` + '0800080080000000' + '05000b0001000000',
      hdr('48') + '0a40800002000000' + '14000100' + 'fd' + '00'.repeat(14) + '02' + `14000600${ci}` + '0800080080000000',
    ]);
  });

  it('routes: the main tables in dump order, ip route save / ip -6 route save bytes', () => {
    const { net } = setup();
    const r4 = mainRoutes4(net);
    assert.deepEqual(r4.map((r) => [r.dst.join('.'), r.dstLen, r.protocol, r.scope]), [['0.0.0.0', 0, 3, 0], ['10.97.0.0', 24, 2, 253]]);
    // What a 6.1 guest's `ip route save` wrote for the same routes (seq/pid zeroed).
    assert.deepEqual(messages(routeImage(r4)), [
      '3400000018002200' + SEQ_PID + '02000000fe030001' + '00000000' + '08000f00fe000000' + '080005000a610001' + '0800040002000000',
      '3c00000018002200' + SEQ_PID + '02180000fe02fd01' + '00000000' + '08000f00fe000000' + '080001000a610000' + '080007000a610002' + '0800040002000000',
    ]);
    const r6 = mainRoutes6(net);
    assert.deepEqual(r6.map((r) => [r.dst.toString('hex'), r.dstLen, r.metric, r.oif]), [['fd000000000000000000000000000000', 64, 256, 2]]);
    assert.deepEqual(messages(route6Image(r6)), [
      '7400000018002200' + SEQ_PID + '0a400000fe02000100000000' + '08000f00fe000000' + '14000100fd000000000000000000000000000000' + '0800060000010000' +
      '0800040002000000' + '24000c00' + '00'.repeat(32) + '0500140000000000',
    ]);
  });

  it('rules: the three default ones, ip rule save bytes', () => {
    const { net } = setup();
    const r = rules4(net);
    assert.deepEqual(r.map((x) => [x.pref, x.table]), [[0, 255], [32766, 254], [32767, 253]]);
    assert.deepEqual(messages(ruleImage(r))[0], '3400000020000200' + SEQ_PID + '02000000ff000001' + '00000000' + '08000f00ff000000' + '08000e00ffffffff' + '0500150002000000');
  });

  it('sysctls as proc prints them (jiffies as seconds or milliseconds), and no firewall hooks', () => {
    const { net } = setup();
    const hz = 250n;
    const conf = netnsSysctls(net, hz);
    assert.equal(conf.all4.length, 30);
    assert.equal(conf.all6.length, 42);
    const six = Object.fromEntries(['mldv1', 'mldv2', 'probe', 'delay', 'interval', 'solicits'].map((n, i) => [n, conf.def6[[24, 25, 31, 32, 33, 34][i]]]));
    assert.deepEqual(six, { mldv1: { type: 'int', value: 10000 }, mldv2: { type: 'int', value: 1000 }, probe: { type: 'int', value: 60 },
      delay: { type: 'int', value: 1 }, interval: { type: 'int', value: 4 }, solicits: { type: 'int', value: -1 } });
    assert.deepEqual(conf.def6[35], { type: 'str' }, 'stable_secret unset reads EIO');
    assert.equal(conf.unixMaxDgramQlen, 10);
    const [, ve0] = netDevices(net);
    assert.deepEqual(deviceSysctls(ve0.dev, hz).conf4.slice(0, 4).map((s) => s.type === 'int' && s.value), [0, 1, 0, 0]);
    assert.deepEqual(netfilterHooks(net), []);
  });

  it('refuses what it cannot carry by name, and corrupt structures with typed errors', () => {
    const { k, net } = setup();
    const table = k.ptr('net', net.address, 'ipv4.fib_main');
    const trie = k.ptr('fib_table', table, 'tb_data');
    const tnode = k.read(k.addr('key_vector', trie, 'tnode'), 8).readBigUInt64LE(0);
    // A tnode whose bits overflow its parent's position: corrupt.
    k.write(tnode, 'key_vector', { pos: 31, bits: 4 });
    assertOvmError(() => mainRoutes4(net), BadDataError);
    k.write(tnode, 'key_vector', { pos: 27, bits: 1 });
    // A device list that loops back on itself.
    const [lo] = netDevices(net);
    k.write(lo.dev.address, 'net_device', { 'dev_list.next': lo.dev.member('dev_list').address });
    assertOvmError(() => netDevices(net), BadDataError);
  });
});
