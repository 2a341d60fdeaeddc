/**
 * The lab guest's /init (busybox sh, in the initramfs). It mounts the host's
 * root read-only over 9p under a tmpfs overlay, prepares what containerd,
 * runc and CRIU need, and hands over to busybox init, which keeps the lab
 * agent running. Parameters come on the kernel command line as ovm.*=.
 * The host root is mounted cache=loose (node loads modules 3-4x faster): a
 * file the host changes while the guest runs may read stale there, so files
 * are exchanged through --share mounts, which are uncached.
 */
export const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

CMDLINE="$(cat /proc/cmdline)"
fail() { echo "ovmigrate-init: $*"; sleep 1; poweroff -f; }
param() { for w in $CMDLINE; do case "$w" in "$1="*) echo "\${w#*=}";; esac; done; }

for m in /modules/*.ko; do insmod "$m" || fail "insmod $m"; done

mkdir -p /lower /upper /newroot
if [ "$(param ovm.root)" = virtiofs ]; then
  mount -t virtiofs -o ro hostroot /lower || fail "mount host root (virtiofs)"
else
  mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower || fail "mount host root"
fi
mount -t tmpfs -o mode=0755 tmpfs /upper || fail "mount tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work /newroot || fail "mount overlay"

R=/newroot
mount --move /proc $R/proc
mount --move /sys $R/sys
mount --move /dev $R/dev
mount -t tmpfs -o mode=0755 tmpfs $R/run
mount -t tmpfs -o mode=0755 tmpfs $R/var/lib
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t tmpfs -o mode=0755 tmpfs $R/mnt
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts $R/dev/pts
ln -sf pts/ptmx $R/dev/ptmx
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t cgroup2 none $R/sys/fs/cgroup
mkdir -p $R/lib/modules
# From /lower: the tmpfs mounts above may hide these paths (a checkout under /tmp, say).
mount --bind "/lower$(param ovm.modules)" $R/lib/modules || fail "bind modules"
mkdir -p "$R$(param ovm.project)"
mount --bind "/lower$(param ovm.project)" "$R$(param ovm.project)" || fail "bind project"

mkdir -p $R/dev/virtio-ports
for p in /newroot/sys/class/virtio-ports/*; do
  [ -e "$p/name" ] && ln -sf "../\${p##*/}" "$R/dev/virtio-ports/$(cat "$p/name")"
done

for s in $(param ovm.shares | tr , ' '); do
  tag="\${s%%:*}"; dir="\${s#*:}"
  mkdir -p "$R$dir"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "$tag" "$R$dir" || fail "mount share $dir"
done
for s in $(param ovm.virtiofs | tr , ' '); do
  tag="\${s%%:*}"; dir="\${s#*:}"
  mkdir -p "$R$dir"
  mount -t virtiofs "$tag" "$R$dir" || fail "mount virtiofs share $dir"
done

echo "$(param ovm.name)" > $R/etc/hostname
hostname "$(param ovm.name)"
ip link set lo up

cp /bin/busybox $R/run/busybox
mkdir -p $R/run/ovmigrate
cat > $R/etc/inittab <<EOT
::sysinit:/run/busybox sh -c 'modprobe -a overlay nf_tables 2>/dev/null; exit 0'
::respawn:/usr/bin/node $(param ovm.agent)
EOT
echo "ovmigrate-init: root ready, starting init"
exec switch_root $R /run/busybox init
`;
